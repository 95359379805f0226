"""A stand-in for the exported embedding SavedModel with the same serving contract, for fast tests."""

import numpy as np
import tensorflow as tf

from trainer_module import features


class TinyEmbeddingModel(tf.Module):
    """The exported model's serving contract (item_ids -> embedding, in_vocabulary; and the softmax row and
    bias when `softmax_rows` and `softmax_biases` are given) over a lookup table."""

    def __init__(
        self,
        item_ids: list[bytes],
        vectors: np.ndarray,
        softmax_rows: np.ndarray | None = None,
        softmax_biases: np.ndarray | None = None,
    ):
        super().__init__()
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(item_ids), tf.range(len(item_ids), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self.vectors = tf.Variable(vectors)
        self.softmax = (
            None if softmax_rows is None else (tf.Variable(softmax_rows), tf.Variable(softmax_biases))
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.SERVING_INPUT)])
    def serve(self, item_ids):
        indices = self.table.lookup(item_ids)
        rows = tf.maximum(indices, 0)
        outputs = {
            features.SERVING_OUTPUT: tf.gather(self.vectors, rows),
            features.KNOWN_OUTPUT: indices >= 0,
        }
        if self.softmax is not None:
            outputs[features.SOFTMAX_ROW_OUTPUT] = tf.gather(self.softmax[0], rows)
            outputs[features.SOFTMAX_BIAS_OUTPUT] = tf.gather(self.softmax[1], rows)
        return outputs
