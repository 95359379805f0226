"""The serving SavedModel: raw item ids in, embeddings and softmax rows out, the tf.Transform graph inside.

Exported as a plain `tf.Module` holding only what inference needs (the hidden layer of every item, stored
as unit rows and their norms, the output softmax rows and biases, and the transform layer), so the artifact
uses only stock TensorFlow ops and loads in stock TF Serving. The hidden layer is computed once here rather
than per call, so ranking a batch costs one matmul and no pass over the whole table.

The network was trained to predict the next engagement through its softmax, so the related items it serves
(and the Evaluator gates on) are ranked by hidden(query) . softmax_row(item) (input x output); cosine between
hidden layers (input x input) finds substitutes instead, and stays available as the `pin2vec_similar` index.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module import features
from trainer_module.model import Pin2VecModel

# Queries ranked together: bounds the [queries, vocabulary] score matrix (64 x 1M floats = 256 MB).
_QUERY_CHUNK = 64


class EmbeddingExport(tf.Module):
    """Inference state of a trained `Pin2VecModel` plus its transform graph."""

    def __init__(self, model: Pin2VecModel, tf_transform_output: tft.TFTransformOutput):
        super().__init__(name="pin2vec")
        hidden = tf.nn.elu(tf.convert_to_tensor(model.item_table.embeddings) + model.hidden_bias)
        norms = tf.norm(hidden, axis=1)
        self.unit_vectors = tf.Variable(tf.math.divide_no_nan(hidden, norms[:, tf.newaxis]), trainable=False)
        self.vector_norms = tf.Variable(norms, trainable=False)
        self.softmax_rows = tf.Variable(tf.convert_to_tensor(model.softmax_weights), trainable=False)
        self.softmax_biases = tf.Variable(tf.convert_to_tensor(model.softmax_biases), trainable=False)
        self.num_classes = model.num_classes
        self.vocabulary_size = model.num_classes - features.NUM_OOV_BUCKETS
        self.tft_layer = tf_transform_output.transform_features_layer()
        self._raw_feature_spec = tf_transform_output.raw_feature_spec()

    def _indices(self, item_ids):
        transformed = self.tft_layer({features.ITEM: tf.reshape(item_ids, [-1, 1])})
        return tf.reshape(transformed[features.ITEM_INDEX], [-1])

    def _unit_rows(self, indices):
        # Gathering from the read value, never from the variable itself: a sparse read (ResourceGather)
        # switches the variable to copy-on-read, and every later read copies the whole table.
        return tf.gather(self.unit_vectors.read_value(), indices)

    def _embed(self, indices):
        return self._unit_rows(indices) * tf.gather(self.vector_norms.read_value(), indices)[:, tf.newaxis]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.SERVING_INPUT)])
    def embed(self, item_ids):
        indices = self._indices(item_ids)
        return {
            features.SERVING_OUTPUT: self._embed(indices),
            features.KNOWN_OUTPUT: indices < self.vocabulary_size,
            features.SOFTMAX_ROW_OUTPUT: tf.gather(self.softmax_rows.read_value(), indices),
            features.SOFTMAX_BIAS_OUTPUT: tf.gather(self.softmax_biases.read_value(), indices),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def score_examples(self, serialized):
        """The vocabulary rows the softmax scores highest after each example's item (hidden(query) .
        softmax_row, see features.NEXT_SCORE_USES_BIAS), best first: what the `pin2vec` index serves.

        Ranked here, in chunks of queries, so that TFMA receives `SCORING_TOP_K` rows per query rather than
        a score per vocabulary row (megabytes per query at a million items). The query's own row and the
        OOV row are left out, as the related-items task excludes them.
        """
        raw = tf.io.parse_example(serialized, {features.ITEM: self._raw_feature_spec[features.ITEM]})
        indices = self._indices(raw[features.ITEM])
        items = self.softmax_rows.read_value()
        biases = self.softmax_biases.read_value() if features.NEXT_SCORE_USES_BIAS else None
        queries = self._embed(indices)
        k = min(features.SCORING_TOP_K, self.vocabulary_size - 1)
        count = tf.shape(indices)[0]
        chunk = tf.maximum(tf.minimum(count, _QUERY_CHUNK), 1)
        chunks = tf.maximum((count + chunk - 1) // chunk, 1)  # one padded chunk for an empty batch
        padding = chunks * chunk - count
        chunked_queries = tf.reshape(tf.pad(queries, [[0, padding], [0, 0]]), [chunks, chunk, items.shape[1]])
        chunked_indices = tf.reshape(tf.pad(indices, [[0, padding]], constant_values=-1), [chunks, chunk])

        def top_rows(chunk_of_queries):
            chunk_queries, chunk_indices = chunk_of_queries
            # Two more than k, then the query's own row and the OOV row dropped: cheaper than masking
            # the whole [chunk, vocabulary] score matrix first.
            scores = tf.matmul(chunk_queries, items, transpose_b=True)
            if biases is not None:
                scores += biases[tf.newaxis, :]
            top = tf.math.top_k(scores, k=k + 2).indices
            top = tf.cast(top, tf.int64)
            excluded = (top == chunk_indices[:, tf.newaxis]) | (top >= self.vocabulary_size)
            kept_first = tf.argsort(tf.cast(excluded, tf.int32), axis=1, stable=True)[:, :k]
            return tf.gather(top, kept_first, batch_dims=1)

        top = tf.map_fn(
            top_rows,
            (chunked_queries, chunked_indices),
            fn_output_signature=tf.TensorSpec([None, k], tf.int64),
            parallel_iterations=1,
        )
        return {features.SCORING_OUTPUT: tf.reshape(top, [-1, k])[:count]}

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
