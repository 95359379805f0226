"""A stand-in for the exported embedding SavedModel with the same serving contract, for fast tests."""

import numpy as np
import tensorflow as tf

from trainer_module import features


class TinyEmbeddingModel(tf.Module):
    """The exported model's serving contract (item_ids -> embedding, in_vocabulary) over a lookup table."""

    def __init__(self, item_ids: list[bytes], vectors: np.ndarray):
        super().__init__()
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(item_ids), tf.range(len(item_ids), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self.vectors = tf.Variable(vectors)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.SERVING_INPUT)])
    def serve(self, item_ids):
        indices = self.table.lookup(item_ids)
        return {
            features.SERVING_OUTPUT: tf.gather(self.vectors, tf.maximum(indices, 0)),
            features.KNOWN_OUTPUT: indices >= 0,
        }
