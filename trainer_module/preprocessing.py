"""tf.Transform preprocessing: one item vocabulary shared by examples and labels, ids -> indices.

Examples and labels share one vocabulary because both index the same softmax/embedding rows. It is written
once, with each item's count ("<count> <item id>" per line, most frequent first): the lookup and the
indexer read its ids, the Trainer's unigram^0.75 negative sampler its counts. One analyzer, so one pass
that counts every token (a second, plain vocabulary of the same tokens cost a second count of them all).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module import features

DEFAULT_VOCABULARY_MIN_COUNT = 1


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any] | None = None):
    """Maps raw `item`/`label` ids to vocabulary indices; unseen ids go to the OOV bucket."""
    min_count = int((custom_config or {}).get("vocabulary_min_count", DEFAULT_VOCABULARY_MIN_COUNT))
    min_count = min_count if min_count > 1 else None  # tft warns that a threshold of 1 is a no-op
    item = tf.reshape(inputs[features.ITEM], [-1])
    label = tf.reshape(inputs[features.LABEL], [-1])
    # Items then labels, looked up together and split back: the counts are over both.
    indices = tft.compute_and_apply_vocabulary(
        tf.concat([item, label], axis=0),
        frequency_threshold=min_count,
        num_oov_buckets=features.NUM_OOV_BUCKETS,
        vocab_filename=features.VOCABULARY_COUNTS,
        store_frequency=True,
        name="items",
    )
    item_index, label_index = tf.split(indices, [tf.size(item), tf.size(label)])
    return {features.ITEM_INDEX: item_index, features.LABEL_INDEX: label_index}
