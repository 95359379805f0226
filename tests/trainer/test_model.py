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
    with pytest.raises(
        ValueError,
        match=r"custom_config.trainer: unknown setting TrainerSettings\.epochz \(known: batch_size,",
    ):
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


def test_reported_loss_is_the_mean_over_every_pair_not_the_last_batch(tmp_path):
    """Keras reports what the metrics say; without one, fit's history held the epoch's last batch only."""
    items, labels = _planted_pairs(40, n=1000)
    settings = TrainerSettings(embedding_dim=8, num_negatives=8, batch_size=64, epochs=1)
    model = build_model(41, settings, write_sampler_file([1] * 41, str(tmp_path / "counts.txt")))
    data = tf.data.Dataset.from_tensor_slices((items, labels)).batch(300)  # 300, 300, 300, 100 pairs
    history = model.fit(data, epochs=2, verbose=0).history
    assert int(model.loss_tracker.count) == 1000  # reset at the epoch's start, then every pair counted once
    assert history["loss"][-1] == pytest.approx(float(model.loss_tracker.total) / 1000)
    evaluated = model.evaluate(data, verbose=0, return_dict=True)["loss"]
    assert int(model.loss_tracker.count) == 1000
    assert evaluated == pytest.approx(float(model.loss_tracker.total) / 1000)


def _sampler_seeds(step, data) -> list[tuple[int, int]]:
    graph = tf.function(step).get_concrete_function(data).graph
    return [
        (op.get_attr("seed"), op.get_attr("seed2"))
        for op in graph.get_operations()
        if op.type.endswith("CandidateSampler")
    ]


def test_evaluation_negatives_are_not_the_training_negatives(tmp_path):
    """Seeded from the global seed alone, both samplers drew one stream: an evaluation's k-th batch met the
    negatives of training step k, which training had pushed down, so the validation loss read low."""
    settings = TrainerSettings(embedding_dim=8, num_negatives=4)
    model = build_model(20, settings, write_sampler_file([1] * 20, str(tmp_path / "counts.txt")))
    spec = (tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64))
    train_seeds, eval_seeds = _sampler_seeds(model.train_step, spec), _sampler_seeds(model.test_step, spec)
    assert len(train_seeds) == len(eval_seeds) == 1
    assert train_seeds != eval_seeds
