"""Sampled softmax with one set of negatives shared by the batch, in few passes over the batch.

Same objective as `tf.nn.sampled_softmax_loss(remove_accidental_hits=True, subtract_log_q=True)` (a unit
test checks the two agree), written directly because the stock version builds a dense [batch, 1 + sampled]
label matrix, a sparse-to-dense hit mask and a concat of the weights, which cost more on CPU than the
[batch, dim] x [dim, sampled] matmul that is the real work. Rows of the softmax weights are gathered once
per distinct label, so their gradient is an `IndexedSlices` over distinct rows: sparse optimizer updates
touch only those rows. Variables are read with `tf.nn.embedding_lookup`, which also reads the sharded
variables of `ParameterServerStrategy`.
"""

from __future__ import annotations

import tensorflow as tf

# Logit given to a sampled negative that is the example's own label ("accidental hit"): never chosen.
_HIT_LOGIT = -1e9


def gather_distinct(table: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """`tf.gather(table, indices)` through the distinct indices, so the gradient touches each row once."""
    distinct, position = tf.unique(indices)
    return tf.gather(tf.nn.embedding_lookup(table, distinct), position)


@tf.custom_gradient
def row_dot(a: tf.Tensor, b: tf.Tensor):
    """Row-wise dot product [n]; its gradient scales rows instead of materialising a broadcast [n, dim]."""

    def grad(upstream):
        scale = upstream[:, tf.newaxis]
        return scale * b, scale * a

    return tf.reduce_sum(a * b, axis=1), grad


def sampled_softmax_loss(
    distinct_hidden: tf.Tensor,
    positions: tf.Tensor,
    labels: tf.Tensor,
    weights: tf.Tensor,
    biases: tf.Tensor,
    sampled_values: tuple[tf.Tensor, tf.Tensor, tf.Tensor],
) -> tf.Tensor:
    """Per-example loss [batch]: softmax over (the true class, the shared sampled classes), log Q corrected.

    Example i's hidden vector is `distinct_hidden[positions[i]]` (one row per distinct item of the batch, as
    `tf.unique` gives them). Logits against the shared negatives depend only on the item, so they are
    computed once per distinct item: in skip-gram data every item comes with several labels, which makes
    the [*, dim] x [dim, sampled] matmuls and their gradients several times smaller.
    labels [batch] int64; weights [classes, dim]; biases [classes]; sampled_values as returned by a
    `tf.random.*_candidate_sampler` with num_true=1 (ids [sampled], true expected counts [batch, 1], sampled
    expected counts [sampled]).
    """
    sampled, true_expected, sampled_expected = sampled_values
    hidden = tf.gather(distinct_hidden, positions)
    true_logits = (
        row_dot(hidden, gather_distinct(weights, labels))
        + tf.nn.embedding_lookup(biases, labels)
        - tf.math.log(tf.reshape(true_expected, [-1]))
    )
    distinct_sampled_logits = (
        tf.matmul(distinct_hidden, tf.nn.embedding_lookup(weights, sampled), transpose_b=True)
        + tf.nn.embedding_lookup(biases, sampled)
        - tf.math.log(sampled_expected)
    )
    sampled_logits = tf.gather(distinct_sampled_logits, positions)
    hits = tf.equal(labels[:, tf.newaxis], tf.cast(sampled, labels.dtype)[tf.newaxis, :])
    sampled_logits = tf.where(hits, tf.constant(_HIT_LOGIT, sampled_logits.dtype), sampled_logits)
    logits = tf.concat([true_logits[:, tf.newaxis], sampled_logits], axis=1)
    return tf.reduce_logsumexp(logits, axis=1) - true_logits
