"""Warm start of the real Keras model from a base model's saved `WarmStart/` files."""

import json
import os

import numpy as np
import tensorflow as tf

from trainer_module.model import TrainerSettings, build_model
from trainer_module.warm_start import model_arrays, model_state, warm_start_model
from trainer_module.warm_start_files import (
    MANIFEST_FILE,
    StartReport,
    read_model_state,
    read_start_report,
    warm_start_dir,
    write_model_state,
)

SETTINGS = TrainerSettings(embedding_dim=8, num_negatives=2, batch_size=4, seed=3)
BASE_IDS = [b"a", b"b", b"c", b"d"]
NEW_IDS = [b"c", b"e", b"a", b"f"]


def _trained_base(tmp_path):
    """A base model trained a little (so its rows differ from any initialisation), saved as a Trainer
    saves it; returns its Format-Serving path, as TFX hands it to run_fn, and the model."""
    model = build_model(len(BASE_IDS) + 1, SETTINGS)
    pairs = tf.data.Dataset.from_tensor_slices(
        (tf.constant([0, 1, 2, 3] * 4, tf.int64), tf.constant([1, 0, 3, 2] * 4, tf.int64))
    ).batch(4)
    model.fit(pairs, epochs=2, verbose=0)
    artifact = tmp_path / "base_model"
    write_model_state(str(artifact), model_state(model, BASE_IDS, 1), StartReport(warm=False))
    return str(artifact / "Format-Serving"), model


def test_carried_rows_equal_the_base_models_new_rows_keep_the_models_initialisation(tmp_path):
    base_dir, base = _trained_base(tmp_path)
    base_arrays = model_arrays(base)
    fresh = model_arrays(build_model(len(NEW_IDS) + 1, SETTINGS))
    model = build_model(len(NEW_IDS) + 1, SETTINGS)

    started = warm_start_model(model, base_dir, NEW_IDS, num_oov_buckets=1)

    assert started == StartReport(
        warm=True, carried_over=2, new=2, dropped=2, base_model=str(tmp_path / "base_model")
    )
    warm = model_arrays(model)
    # The weights and Adagrad's accumulators (training resumes where the base model stopped).
    rows = ("item_embedding", "softmax_weights", "softmax_biases")
    assert {f"{name}.accumulator" for name in rows} <= set(warm)
    for name in (*rows, *(f"{name}.accumulator" for name in rows)):
        np.testing.assert_array_equal(warm[name][0], base_arrays[name][2], err_msg=name)  # c
        np.testing.assert_array_equal(warm[name][2], base_arrays[name][0], err_msg=name)  # a
        np.testing.assert_array_equal(warm[name][4], base_arrays[name][4], err_msg=name)  # OOV
        np.testing.assert_array_equal(warm[name][[1, 3]], fresh[name][[1, 3]], err_msg=name)  # e, f
    np.testing.assert_array_equal(warm["hidden_bias"], base_arrays["hidden_bias"])
    np.testing.assert_array_equal(warm["hidden_bias.accumulator"], base_arrays["hidden_bias.accumulator"])
    assert warm["optimizer.iterations"] == base_arrays["optimizer.iterations"] == 8  # 2 epochs x 4 batches
    assert not np.array_equal(base_arrays["hidden_bias"], fresh["hidden_bias"])  # training moved it
    # The exported embedding of a carried item is the base model's.
    np.testing.assert_allclose(model(tf.constant([0], tf.int64)), base(tf.constant([2], tf.int64)))
    # And the warm model trains on.
    more = tf.data.Dataset.from_tensor_slices(
        (tf.constant([0, 1, 2, 3], tf.int64), tf.constant([2, 3, 0, 1], tf.int64))
    ).batch(4)
    model.fit(more, verbose=0)
    assert not np.array_equal(model_arrays(model)["item_embedding"], warm["item_embedding"])


def test_files_round_trip_without_pickle_and_carry_the_start_report(tmp_path):
    _, base = _trained_base(tmp_path)
    state = read_model_state(str(tmp_path / "base_model"))
    assert state.item_ids == BASE_IDS and state.num_oov_buckets == 1
    np.testing.assert_array_equal(state.arrays["item_embedding"], base.item_table.embeddings.numpy())
    assert read_start_report(str(tmp_path / "base_model")) == StartReport(warm=False)
    assert read_start_report(str(tmp_path / "nothing_here")) is None
    for name in os.listdir(warm_start_dir(str(tmp_path / "base_model"))):
        if name.endswith(".npy"):  # plain arrays: loadable with pickling refused
            np.load(os.path.join(warm_start_dir(str(tmp_path / "base_model")), name), allow_pickle=False)


def test_an_unusable_base_model_starts_cold_and_says_why(tmp_path):
    model = build_model(len(NEW_IDS) + 1, SETTINGS)
    before = model_arrays(model)["item_embedding"]
    assert warm_start_model(model, None, NEW_IDS, 1) == StartReport(warm=False, new=4)

    started = warm_start_model(model, str(tmp_path / "old_model" / "Format-Serving"), NEW_IDS, 1)
    assert not started.warm and "warm_start.json is missing" in started.note

    base_dir, _ = _trained_base(tmp_path)
    wider = build_model(len(NEW_IDS) + 1, TrainerSettings(embedding_dim=16, num_negatives=2))
    started = warm_start_model(wider, base_dir, NEW_IDS, 1)
    assert not started.warm and "shape (8,)" in started.note and "(16,)" in started.note

    manifest = tmp_path / "base_model" / "WarmStart" / MANIFEST_FILE
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "vocabulary_size": 9}))
    started = warm_start_model(model, base_dir, NEW_IDS, 1)
    assert not started.warm and "4 ids, the manifest says 9" in started.note
    np.testing.assert_array_equal(model_arrays(model)["item_embedding"], before)  # untouched
