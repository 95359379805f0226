import numpy as np
import pytest
import tensorflow as tf

from trainer_module.model import TrainerSettings, build_model, write_sampler_file


def _planted_pairs(num_items=40, seed=0, n=4000):
    """Items come in pairs (2i, 2i+1) that always co-occur: a structure training must find."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, num_items, size=n)
    labels = items ^ 1
    return items.astype(np.int64), labels.astype(np.int64)


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="num_negatives"):
        TrainerSettings(num_negatives=0)
    with pytest.raises(ValueError, match="Unknown trainer settings"):
        TrainerSettings.from_config({"epochz": 3})
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainerSettings(optimizer="adamw")
    with pytest.raises(ValueError, match="shuffle_buffer"):
        TrainerSettings(shuffle_buffer=-1)


def test_model_embeds_to_settings_dim_with_elu_range():
    model = build_model(50, TrainerSettings(embedding_dim=16, num_negatives=8))
    out = model(tf.constant([0, 3, 49], tf.int64)).numpy()
    assert out.shape == (3, 16)
    assert (out > -1.0).all()  # ELU's lower bound: the hidden layer really is ELU


@pytest.mark.parametrize("optimizer, learning_rate", [("adagrad", 0.2), ("adam", 0.05), ("sgd", 0.05)])
def test_sampled_softmax_loss_falls_and_learns_planted_neighbours(tmp_path, optimizer, learning_rate):
    num_items = 40
    items, labels = _planted_pairs(num_items)
    counts = np.bincount(labels, minlength=num_items + 1) + 1
    sampler = write_sampler_file(counts, str(tmp_path / "counts.txt"))
    settings = TrainerSettings(
        embedding_dim=16,
        num_negatives=8,
        batch_size=64,
        learning_rate=learning_rate,
        optimizer=optimizer,
        epochs=1,
    )
    model = build_model(num_items + 1, settings, sampler)
    data = tf.data.Dataset.from_tensor_slices((items, labels)).batch(64)
    first = model.evaluate(data, verbose=0, return_dict=True)["loss"]
    model.fit(data, epochs=8, verbose=0)
    last = model.evaluate(data, verbose=0, return_dict=True)["loss"]
    assert last < 0.5 * first
    logits = model.softmax_logits(tf.constant(np.arange(0, num_items, 2), tf.int64)).numpy()
    top = logits.argmax(axis=1)
    assert (top == np.arange(0, num_items, 2) + 1).mean() > 0.9


def test_sampler_file_rejects_non_positive_counts(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        write_sampler_file([3, 0, 1], str(tmp_path / "c.txt"))
    path = write_sampler_file([3, 2, 1], str(tmp_path / "c.txt"))
    with open(path) as f:
        assert f.read().split() == ["3", "2", "1"]


def test_every_optimizer_name_the_settings_accept_has_a_builder():
    from trainer_module.model import OPTIMIZERS
    from trainer_module.settings import OPTIMIZER_NAMES

    assert set(OPTIMIZERS) == set(OPTIMIZER_NAMES)
