"""Feature and signature names shared by ExampleGen, Transform, Trainer, Evaluator, indexer and serving.

One place, so that a rename cannot leave one stage reading a feature another stage no longer writes.
"""

# Raw features of a training pair, as written by the session ExampleGen.
ITEM = "item"  # the example: first item of the window (bytes)
LABEL = "label"  # a following item in the window (bytes)
TIMESTAMP = "timestamp"  # Unix seconds of the label's engagement (int64)
RAW_FEATURES = (ITEM, LABEL, TIMESTAMP)

# Transformed features, as written by `trainer_module.preprocessing.preprocessing_fn`.
ITEM_INDEX = "item_index"
LABEL_INDEX = "label_index"

# Vocabulary files in the Transform output (`TFTransformOutput.vocabulary_file_by_name`).
VOCABULARY = "items"  # one item id per line, most frequent first
VOCABULARY_COUNTS = "item_counts"  # same order, "<count> <item id>" per line
NUM_OOV_BUCKETS = 1  # ids outside the vocabulary map to index len(vocabulary)

# Exported SavedModel signatures.
SERVING_SIGNATURE = "serving_default"  # {item_ids: [n] string} -> {embedding: [n, dim] float32}
SERVING_INPUT = "item_ids"
SERVING_OUTPUT = "embedding"
KNOWN_OUTPUT = "in_vocabulary"  # [n] bool: False for ids the model never saw in training
SOFTMAX_ROW_OUTPUT = "softmax_row"  # [n, dim] float32: the item's row of the output softmax
SOFTMAX_BIAS_OUTPUT = "softmax_bias"  # [n] float32: the item's softmax bias
# Pin2Vec's related items are the items the softmax predicts next: hidden(query) . softmax_row(item), plus the
# item's softmax bias when this is True. Chosen on validation (docs/BENCHMARKS.md, "Trainer settings sweep").
NEXT_SCORE_USES_BIAS = False
SCORING_SIGNATURE = "serving_scores"  # serialized tf.Example -> {top_items: [n, <= SCORING_TOP_K]}, for TFMA
SCORING_OUTPUT = (
    "top_items"  # vocabulary rows by next-engagement score, best first, the query's own row left out
)
SCORING_TOP_K = 50  # the largest k the Evaluator's hit rate asks for
LEGACY_SCORING_OUTPUT = "scores"  # [n, vocab + oov] scores from models exported before the top rows
TRANSFORM_SIGNATURE = "transform_features"  # serialized tf.Example -> transformed features, for TFMA
