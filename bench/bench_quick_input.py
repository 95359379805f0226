"""bench-quick's input to our trainer: the pairs as raw gzip TFRecord shards (item ids as strings, as
SessionExampleGen writes them), read and looked up by the Trainer's pipeline."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from trainer_module.input_pipeline import pair_batches, vocabulary_indexer, write_pairs, write_vocabulary

SHARDS = 4
VOCABULARY_FILE = "vocabulary.txt"  # beside the shards: id "k" is vocabulary row k


def write_pair_shards(centers: np.ndarray, contexts: np.ndarray, work_dir: str) -> list[str]:
    """Pairs in their (center-major) order, cut into contiguous shards, as SessionExampleGen would write
    them; vocabulary row k is written as the id "k"."""
    paths = []
    for shard, rows in enumerate(np.array_split(np.arange(len(centers)), SHARDS)):
        path = os.path.join(work_dir, f"pairs-{shard:05d}-of-{SHARDS:05d}.gz")
        if not os.path.exists(path):
            write_pairs(path, centers[rows].astype(str).tolist(), contexts[rows].astype(str).tolist())
        paths.append(path)
    return paths


def pair_dataset(paths: list[str], settings, vocabulary_size: int, cache_path: str | None) -> tf.data.Dataset:
    """The Trainer's own input pipeline over the pair shards, with the lookup of a plain vocabulary
    ("0" .. str(vocabulary_size - 1)) standing in for the Transform graph (the same table lookup)."""
    vocabulary_file = os.path.join(os.path.dirname(paths[0]), VOCABULARY_FILE)
    if not os.path.exists(vocabulary_file):
        write_vocabulary(vocabulary_file, [str(row) for row in range(vocabulary_size)])
    return pair_batches(
        paths,
        vocabulary_indexer(vocabulary_file, vocabulary_size),
        settings.batch_size,
        vocabulary_size,
        settings.shuffle_buffer,
        settings.seed,
        cache_path=cache_path if settings.cache_input and cache_path else None,
    )
