"""tf.Transform preprocessing: one item vocabulary shared by examples and labels, ids -> indices.

Examples and labels share one vocabulary because both index the same softmax/embedding rows. It is written
once, with each item's count ("<count> <item id>" per line, most frequent first): the lookup and the
indexer read its ids, the Trainer's unigram^0.75 negative sampler its counts. One analyzer, so one pass
that counts every token (a second, plain vocabulary of the same tokens cost a second count of them all).
"""

from __future__ import annotations

import contextlib
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module import features
from trainer_module.vocabulary_file import TFT_SPACE

DEFAULT_VOCABULARY_MIN_COUNT = 1


def _spell_spaces(ids: tf.Tensor) -> tf.Tensor:
    """Ids as a frequency vocabulary holds them: a space would split "<count> <id>" (tf.Transform's own
    `compute_and_apply_vocabulary(store_frequency=True)` spells it the same way)."""
    return tf.strings.regex_replace(ids, " ", TFT_SPACE.decode())


def lookup_counted_vocabulary(ids: tf.Tensor, vocabulary_path) -> tuple[tf.Tensor, tf.Tensor]:
    """`tft.apply_vocabulary`'s `lookup_fn` for a vocabulary with counts: the same table tf.Transform builds
    for one (the id is the line's second column, the row its line number, one OOV bucket), created once
    where the path is known (tf.init_scope), not on every call of the transform graph."""
    with contextlib.ExitStack() as stack:
        if tf.inside_function() and not tf.is_symbolic_tensor(vocabulary_path):
            stack.enter_context(tf.init_scope())
        initializer = tf.lookup.TextFileInitializer(
            vocabulary_path,
            key_dtype=tf.string,
            key_index=1,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            delimiter=" ",
        )
        table = tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=features.NUM_OOV_BUCKETS)
    return table.lookup(_spell_spaces(ids)), table.size()


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any] | None = None):
    """Maps raw `item`/`label` ids to vocabulary indices; unseen ids go to the OOV bucket."""
    min_count = int((custom_config or {}).get("vocabulary_min_count", DEFAULT_VOCABULARY_MIN_COUNT))
    min_count = min_count if min_count > 1 else None  # tft warns that a threshold of 1 is a no-op
    item = tf.reshape(inputs[features.ITEM], [-1])
    label = tf.reshape(inputs[features.LABEL], [-1])
    vocabulary = tft.vocabulary(
        _spell_spaces(tf.concat([item, label], axis=0)),
        frequency_threshold=min_count,
        vocab_filename=features.VOCABULARY_COUNTS,
        store_frequency=True,
        name="items",
    )
    # Each looked up on its own, so that serving can map items without labels.
    return {
        name: tft.apply_vocabulary(ids, vocabulary, lookup_fn=lookup_counted_vocabulary)
        for name, ids in ((features.ITEM_INDEX, item), (features.LABEL_INDEX, label))
    }
