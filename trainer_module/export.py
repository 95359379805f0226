"""The serving SavedModel: raw item ids in, embeddings out, the tf.Transform graph inside.

Exported as a plain `tf.Module` holding only what inference needs (the item table, the hidden bias and the
transform layer), so the artifact uses only stock TensorFlow ops and loads in stock TF Serving. The softmax
weights are a training device and stay out of it.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module import features
from trainer_module.model import Pin2VecModel

# The score of the query's own row: low enough never to reach a top-k.
_EXCLUDED_SCORE = -1e9
# Queries ranked together: bounds the [queries, vocabulary] score matrix (64 x 1M floats = 256 MB).
_QUERY_CHUNK = 64


class EmbeddingExport(tf.Module):
    """Inference state of a trained `Pin2VecModel` plus its transform graph."""

    def __init__(self, model: Pin2VecModel, tf_transform_output: tft.TFTransformOutput):
        super().__init__(name="pin2vec")
        self.item_table = model.item_table.embeddings
        self.hidden_bias = model.hidden_bias
        self.vocabulary_size = model.num_classes - features.NUM_OOV_BUCKETS
        self.tft_layer = tf_transform_output.transform_features_layer()
        self._raw_feature_spec = tf_transform_output.raw_feature_spec()

    def _indices(self, item_ids):
        transformed = self.tft_layer({features.ITEM: tf.reshape(item_ids, [-1, 1])})
        return tf.reshape(transformed[features.ITEM_INDEX], [-1])

    def _embed(self, indices):
        return tf.nn.elu(tf.gather(self.item_table, indices) + self.hidden_bias)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.SERVING_INPUT)])
    def embed(self, item_ids):
        indices = self._indices(item_ids)
        return {
            features.SERVING_OUTPUT: self._embed(indices),
            features.KNOWN_OUTPUT: indices < self.vocabulary_size,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def score_examples(self, serialized):
        """The vocabulary rows most cosine-similar to each example's item, best first: what the index serves.

        Ranked here, in chunks of queries, so that TFMA receives `SCORING_TOP_K` rows per query rather than
        a score per vocabulary row (megabytes per query at a million items). The query's own row and the
        OOV row are left out, as the related-items task excludes them.
        """
        raw = tf.io.parse_example(serialized, {features.ITEM: self._raw_feature_spec[features.ITEM]})
        indices = self._indices(raw[features.ITEM])
        queries = tf.math.l2_normalize(self._embed(indices), axis=1)
        items = tf.math.l2_normalize(
            tf.nn.elu(self.item_table[: self.vocabulary_size] + self.hidden_bias), axis=1
        )
        k = min(features.SCORING_TOP_K, self.vocabulary_size - 1)
        count = tf.shape(indices)[0]
        chunks = (count + _QUERY_CHUNK - 1) // _QUERY_CHUNK
        padding = chunks * _QUERY_CHUNK - count
        chunked_queries = tf.reshape(tf.pad(queries, [[0, padding], [0, 0]]), [chunks, _QUERY_CHUNK, -1])
        chunked_indices = tf.reshape(
            tf.pad(indices, [[0, padding]], constant_values=-1), [chunks, _QUERY_CHUNK]
        )
        rows = tf.range(self.vocabulary_size, dtype=indices.dtype)

        def top_rows(chunk):
            chunk_queries, chunk_indices = chunk
            scores = tf.matmul(chunk_queries, items, transpose_b=True)
            scores = tf.where(rows[tf.newaxis, :] == chunk_indices[:, tf.newaxis], _EXCLUDED_SCORE, scores)
            return tf.cast(tf.math.top_k(scores, k=k).indices, tf.int64)

        top = tf.map_fn(
            top_rows,
            (chunked_queries, chunked_indices),
            fn_output_signature=tf.TensorSpec([_QUERY_CHUNK, None], tf.int64),
            parallel_iterations=1,
        )
        return {features.SCORING_OUTPUT: tf.reshape(top, [chunks * _QUERY_CHUNK, k])[:count]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, serialized):
        """Raw serialized examples -> transformed features; TFMA reads the label index from here."""
        raw = tf.io.parse_example(serialized, self._raw_feature_spec)
        return self.tft_layer(raw)


def export_serving_model(
    model: Pin2VecModel, tf_transform_output: tft.TFTransformOutput, export_dir: str
) -> str:
    """Writes the SavedModel with its three signatures and returns `export_dir`."""
    module = EmbeddingExport(model, tf_transform_output)
    signatures = {
        features.SERVING_SIGNATURE: module.embed.get_concrete_function(),
        features.SCORING_SIGNATURE: module.score_examples.get_concrete_function(),
        features.TRANSFORM_SIGNATURE: module.transform_features.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    return export_dir
