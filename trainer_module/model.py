"""The Pin2Vec network: item -> 128-d ELU hidden layer (the embedding) -> softmax over the vocabulary.

Multiplying a one-hot vector by a dense matrix is a row lookup, so the first layer is an embedding table
plus a bias; training uses sampled softmax with negatives drawn from the unigram^0.75 distribution
(word2vec's sampler), so a step costs O(batch * negatives), not O(batch * vocabulary).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from trainer_module.sampled_softmax import sampled_softmax_loss
from trainer_module.settings import TrainerSettings

__all__ = ["OPTIMIZERS", "Pin2VecModel", "TrainerSettings", "build_model", "write_sampler_file"]


# Sparse-friendly choices: adagrad and sgd update only the embedding rows a batch touches (O(batch * dim)
# per step); tf_keras' Adam updates every row's moments each step (O(vocabulary * dim)), fine for small
# vocabularies only.
OPTIMIZERS = {
    "adagrad": lambda lr: tf_keras.optimizers.Adagrad(learning_rate=lr),
    "sgd": lambda lr: tf_keras.optimizers.SGD(learning_rate=lr),
    "adam": lambda lr: tf_keras.optimizers.Adam(learning_rate=lr),
}


def write_sampler_file(counts: Sequence[int], path: str) -> str:
    """Writes one count per line (index order) for `fixed_unigram_candidate_sampler(vocab_file=...)`.

    A file instead of an in-graph list keeps the graph small for vocabularies of tens of millions.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or len(counts) == 0 or (counts <= 0).any():
        raise ValueError(f"Sampler counts must be a non-empty list of positive integers, got {counts[:10]}")
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(map(str, counts.tolist())) + "\n")
    return path


# Op seed of the negative sampler when evaluating. Without one, the evaluation's sampler takes its seeds from
# the global seed alone, exactly as the training's does: both draw the same stream, so an evaluation's k-th
# batch was scored against the negatives of training step k, which the model has already pushed down.
EVAL_SAMPLER_SEED = 1


class Pin2VecModel(tf_keras.Model):
    """Maps item indices to embeddings; `train_step` applies the sampled-softmax objective.

    `call()` returns the hidden layer only: that is what is exported and indexed. The output softmax
    weights exist for training (and for `softmax_logits`, useful in tests and diagnostics).
    """

    def __init__(
        self, num_classes: int, settings: TrainerSettings, sampler_file: str | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"Need at least 2 classes (items + OOV) to train, got {num_classes}")
        self.num_classes = num_classes
        self.settings = settings
        self.sampler_file = sampler_file
        dim = settings.embedding_dim
        init = tf_keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim, seed=settings.seed)
        self.item_table = tf_keras.layers.Embedding(
            num_classes, dim, embeddings_initializer=init, name="item_embedding"
        )
        self.hidden_bias = self.add_weight(name="hidden_bias", shape=[dim], initializer="zeros")
        self.softmax_weights = self.add_weight(
            name="softmax_weights",
            shape=[num_classes, dim],
            initializer=tf_keras.initializers.TruncatedNormal(stddev=dim**-0.5, seed=settings.seed + 1),
        )
        self.softmax_biases = self.add_weight(name="softmax_biases", shape=[num_classes], initializer="zeros")
        # "loss" in fit's history and evaluate's result: the mean over every pair of the epoch (or of the
        # evaluation), reset by Keras at each start. Without a metric Keras reports the value the last
        # step returned, i.e. the loss of the epoch's last batch only.
        self.loss_tracker = tf_keras.metrics.Mean(name="loss")

    def call(self, item_indices, training=False):
        return tf.nn.elu(self.item_table(item_indices) + self.hidden_bias)

    def softmax_logits(self, item_indices):
        return tf.matmul(self(item_indices), self.softmax_weights, transpose_b=True) + self.softmax_biases

    def _sampled_loss(self, items, labels, sampler_seed: int | None = None):
        labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
        # Each distinct item of the batch is looked up, activated and scored against the negatives once.
        distinct, positions = tf.unique(tf.reshape(tf.cast(items, tf.int64), [-1]))
        distinct_hidden = tf.nn.elu(
            tf.nn.embedding_lookup(self.item_table.embeddings, distinct) + self.hidden_bias
        )
        num_sampled = min(self.settings.num_negatives, self.num_classes - 1)
        common = dict(
            true_classes=labels[:, tf.newaxis],
            num_true=1,
            num_sampled=num_sampled,
            unique=True,
            range_max=self.num_classes,
            seed=sampler_seed,
        )
        if self.sampler_file:
            sampled = tf.random.fixed_unigram_candidate_sampler(
                **common, vocab_file=self.sampler_file, distortion=self.settings.sampler_exponent
            )
        else:  # no counts: Zipf-like prior, valid because the vocabulary is sorted by frequency
            sampled = tf.random.log_uniform_candidate_sampler(**common)
        losses = sampled_softmax_loss(
            distinct_hidden, positions, labels, self.softmax_weights, self.softmax_biases, sampled
        )
        return losses

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_batch(self, data) -> tf.Tensor:
        """One step on the batch's summed loss, as word2vec does per pair: an item row's update grows with the
        pairs it is in, not shrinks with the batch size, so one learning rate serves any batch size (Adam
        is indifferent to the scale; Adagrad and SGD are not). Returns the per-pair losses [batch]."""
        items, labels = data
        with tf.GradientTape() as tape:
            losses = self._sampled_loss(items, labels)
            total = tf.reduce_sum(losses)
        self.optimizer.apply_gradients(
            zip(tape.gradient(total, self.trainable_variables), self.trainable_variables, strict=True)
        )
        return losses

    def train_step(self, data):
        """`train_batch`; the reported loss is the running mean per pair since the epoch began."""
        self.loss_tracker.update_state(self.train_batch(data))
        return {"loss": self.loss_tracker.result()}

    def evaluate_batch(self, data) -> tf.Tensor:
        """Per-pair losses [batch] against negatives drawn independently of the training's."""
        items, labels = data
        return self._sampled_loss(items, labels, sampler_seed=EVAL_SAMPLER_SEED)

    def test_step(self, data):
        self.loss_tracker.update_state(self.evaluate_batch(data))
        return {"loss": self.loss_tracker.result()}

    def item_embeddings(self):
        """Embeddings of every index (vocabulary + OOV rows), as the exported model computes them."""
        return tf.nn.elu(self.item_table.embeddings + self.hidden_bias)


def build_model(num_classes: int, settings: TrainerSettings, sampler_file: str | None = None) -> Pin2VecModel:
    """A compiled model. Adagrad's per-row step sizes suit the very uneven update frequencies of item rows."""
    tf_keras.utils.set_random_seed(settings.seed)
    model = Pin2VecModel(num_classes, settings, sampler_file)
    model.compile(optimizer=OPTIMIZERS[settings.optimizer](settings.learning_rate))
    model(tf.zeros([1], tf.int64))  # create the variables
    return model
