"""bench-quick's input to our trainer: the pairs as gzip TFRecord shards, read by the Trainer's pipeline."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from trainer_module.input_pipeline import PAIR_FEATURE_SPEC, pair_batches, write_pairs

SHARDS = 4


def write_pair_shards(centers: np.ndarray, contexts: np.ndarray, work_dir: str) -> list[str]:
    """Pairs in their (center-major) order, cut into contiguous shards, as Transform would write them."""
    paths = []
    for shard, rows in enumerate(np.array_split(np.arange(len(centers)), SHARDS)):
        path = os.path.join(work_dir, f"pairs-{shard:05d}-of-{SHARDS:05d}.gz")
        if not os.path.exists(path):
            write_pairs(path, centers[rows].tolist(), contexts[rows].tolist())
        paths.append(path)
    return paths


def pair_dataset(paths: list[str], settings, vocabulary_size: int, cache_path: str | None) -> tf.data.Dataset:
    """The Trainer's own input pipeline over the pair shards."""
    return pair_batches(
        paths,
        PAIR_FEATURE_SPEC,
        settings.batch_size,
        vocabulary_size,
        settings.shuffle_buffer,
        settings.seed,
        cache_path=cache_path if settings.cache_input and cache_path else None,
    )
