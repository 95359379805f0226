import numpy as np
import tensorflow as tf

from trainer_module.sampled_softmax import gather_distinct, sampled_softmax_loss


def _case(seed=0, batch=300, classes=50, dim=8, sampled=10):
    rng = np.random.default_rng(seed)
    items = rng.integers(0, 20, batch)  # few distinct items: several labels per item, as in skip-gram data
    distinct, positions = tf.unique(tf.constant(items, tf.int64))
    distinct_hidden = tf.constant(rng.normal(size=(len(distinct), dim)), tf.float32)
    labels = tf.constant(rng.integers(0, classes, batch), tf.int64)
    weights = tf.Variable(rng.normal(size=(classes, dim)), dtype=tf.float32)
    biases = tf.Variable(rng.normal(size=classes), dtype=tf.float32)
    candidates = tf.random.log_uniform_candidate_sampler(
        labels[:, None], 1, sampled, True, classes, seed=seed
    )
    return distinct_hidden, positions, labels, weights, biases, candidates


def test_matches_tensorflow_sampled_softmax_loss_and_its_gradients():
    distinct_hidden, positions, labels, weights, biases, candidates = _case()
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(distinct_hidden)
        ours = sampled_softmax_loss(distinct_hidden, positions, labels, weights, biases, candidates)
        reference = tf.nn.sampled_softmax_loss(
            weights,
            biases,
            labels[:, None],
            tf.gather(distinct_hidden, positions),
            num_sampled=10,
            num_classes=50,
            sampled_values=candidates,
        )
        ours_total, reference_total = tf.reduce_sum(ours), tf.reduce_sum(reference)
    # The sampled ids really hit some labels, so the accidental-hit removal is exercised.
    assert np.isin(labels.numpy(), candidates[0].numpy()).any()
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)
    for variable in (distinct_hidden, weights, biases):
        mine = tf.convert_to_tensor(tape.gradient(ours_total, variable))
        theirs = tf.convert_to_tensor(tape.gradient(reference_total, variable))
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-3, atol=1e-4)


def test_gather_distinct_is_a_gather_whose_gradient_has_one_row_per_index():
    table = tf.Variable(np.arange(12, dtype=np.float32).reshape(6, 2))
    indices = tf.constant([4, 1, 4, 4, 0], tf.int64)
    with tf.GradientTape() as tape:
        out = gather_distinct(table, indices)
        total = tf.reduce_sum(out)
    np.testing.assert_array_equal(out.numpy(), tf.gather(table, indices).numpy())
    grad = tape.gradient(total, table)
    assert isinstance(grad, tf.IndexedSlices)
    assert sorted(grad.indices.numpy().tolist()) == [0, 1, 4]  # each row once: sparse updates stay small
    np.testing.assert_array_equal(tf.convert_to_tensor(grad).numpy()[4], [3.0, 3.0])
