"""tf.Transform preprocessing: one item vocabulary shared by examples and labels, ids -> indices.

Examples and labels share one vocabulary because both index the same softmax/embedding rows. The same
vocabulary is written twice, once plain (for the lookup and the indexer) and once with counts (for the
Trainer's unigram^0.75 negative sampler); both come out of the same analyzer in the same order.
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
    both = tf.concat([item, label], axis=0)
    vocabulary = tft.vocabulary(
        both, frequency_threshold=min_count, vocab_filename=features.VOCABULARY, name="items"
    )
    tft.vocabulary(
        both,
        frequency_threshold=min_count,
        vocab_filename=features.VOCABULARY_COUNTS,
        store_frequency=True,
        name="item_counts",
    )
    return {
        features.ITEM_INDEX: tft.apply_vocabulary(item, vocabulary, num_oov_buckets=features.NUM_OOV_BUCKETS),
        features.LABEL_INDEX: tft.apply_vocabulary(
            label, vocabulary, num_oov_buckets=features.NUM_OOV_BUCKETS
        ),
    }
