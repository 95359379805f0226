"""Beam steps shared by the steps that build a candidate table from sharded pair counts (session
co-occurrence over the whole window, board co-occurrence): the item rows with their engagement counts, the
element-wise sums of per-shard degrees, and ranking one shard into an .npz that `assemble_table` reads."""

from __future__ import annotations

import os
from collections import Counter

import apache_beam as beam
import numpy as np

from components.cooccurrence import cooccurrence_lib


class ItemCounts(beam.CombineFn):
    """Lists of (user or board, item, ...) tuples -> (the sorted unique item ids as bytes: the table's rows;
    how many tuples name each item: its popularity)."""

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, counts: Counter, events: list[tuple]) -> Counter:
        counts.update(event[1] for event in events)
        return counts

    def merge_accumulators(self, accumulators) -> Counter:
        merged: Counter = Counter()
        for counts in accumulators:
            merged.update(counts)
        return merged

    def extract_output(self, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        items = sorted(counts)
        vocabulary = np.array([item.encode("utf-8") for item in items], dtype=np.bytes_)
        return vocabulary, np.array([counts[item] for item in items], dtype=np.int64)


def sum_arrays(arrays) -> np.ndarray:
    """Element-wise sum, keeping the arrays' dtype; Beam also hands in the empty result of combining nothing,
    which is skipped."""
    arrays = [array for array in arrays if len(array)]
    return np.sum(arrays, axis=0) if arrays else np.zeros(0)


def rank_shard(shard_parts, degrees: np.ndarray, vocabulary: np.ndarray, settings, out_dir: str) -> str:
    """One shard's merged (keys, weights) -> its ranked candidate rows, saved as out_dir/shard-NNNNN.npz."""
    shard, (keys, weights) = shard_parts
    top = cooccurrence_lib.top_candidate_rows(keys, weights, degrees, len(vocabulary), settings)
    path = os.path.join(out_dir, f"shard-{shard:05d}.npz")
    np.savez(path, **top._asdict())
    return path
