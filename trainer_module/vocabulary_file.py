"""Reads Transform's item vocabulary: one "<count> <item id>" line per item, most frequent first.

The preprocessing_fn writes it with `store_frequency=True` (trainer_module/preprocessing.py), so tf.Transform
spells a space inside an id as `__SPACE__` (its own lookup does the same to the raw ids); the ids read here
are the raw ones again. Outputs of older runs also hold a plain copy (`features.VOCABULARY`) beside it.
"""

from __future__ import annotations

from collections.abc import Iterable

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module import features

TFT_SPACE = b"__SPACE__"  # tf.Transform's stand-in for " " in a frequency vocabulary (tf_utils)


def parse_vocabulary_counts(
    lines: Iterable[bytes], source: str = "vocabulary"
) -> tuple[list[bytes], list[int]]:
    """(item ids, counts) in row order from the lines of a frequency vocabulary."""
    ids, counts = [], []
    for line_no, line in enumerate(lines):
        count, space, token = line.rstrip(b"\r\n").partition(b" ")
        if not space or not count.isdigit():
            raise ValueError(f"{source}:{line_no + 1}: expected '<count> <item id>', got {line!r}")
        ids.append(token.replace(TFT_SPACE, b" "))
        counts.append(int(count))
    return ids, counts


def read_vocabulary(tf_transform_output: tft.TFTransformOutput) -> tuple[list[bytes], list[int]]:
    """(item ids, counts) of the Transform output's vocabulary, row order."""
    path = tf_transform_output.vocabulary_file_by_name(features.VOCABULARY_COUNTS)
    if path is None:
        raise ValueError(
            f"no vocabulary {features.VOCABULARY_COUNTS!r} in the Transform output "
            f"(looked in {tf_transform_output.transform_savedmodel_dir}/assets); expected the "
            "preprocessing_fn to write it with store_frequency=True"
        )
    with tf.io.gfile.GFile(path, "rb") as f:
        return parse_vocabulary_counts(f, path)
