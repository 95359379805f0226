"""Vectors for `make bench-index-scale`: seeded clustered unit vectors streamed to a .npy file, read back
through a read-only memory map whose pages can be handed back, and exact top-k by streaming over it.

Streaming matters at 10,000,000 x 128 float32 (5.1 GB): no process may hold a second copy just to read the
file, and a read-only map's pages are page cache, which `MappedMatrix.release` drops from the process's RSS.
"""

from __future__ import annotations

import dataclasses
import mmap
import os

import numpy as np

from components.scann_indexer.index_lib import normalize_rows

# Rows generated per random stream: the file's contents do not depend on how the writer batches its writes.
GENERATION_BLOCK_ROWS = 16_384


@dataclasses.dataclass(frozen=True)
class VectorSpec:
    """A mixture of low-rank Gaussians, normalized: bench_serving's Gaussian topic centres, but each item's
    offset from its centre lies mostly in its topic's own `topic_rank`-dimensional subspace, plus a little
    isotropic noise. Trained embeddings look like this (low intrinsic dimension, so an item's neighbours
    are clearly closer than the rest); bench_serving's full-rank unit noise makes every topic a ball of
    near-ties, which no real catalogue is. items // items_per_topic topics, so topics never line up with
    an index's sqrt(N) partitions.
    """

    items: int
    dim: int = 128
    items_per_topic: int = 1_000
    topic_rank: int = 8
    topic_spread: float = 0.35  # per-entry scale of a topic's basis: offsets about as long as the centres
    noise: float = 0.2  # per-dimension isotropic noise
    seed: int = 0

    def __post_init__(self):
        for name in ("items", "dim", "items_per_topic", "topic_rank"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VectorSpec.{name} must be an integer >= 1; got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"VectorSpec.seed must be an integer >= 0; got {self.seed!r}")
        for name in ("topic_spread", "noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"VectorSpec.{name} must be a number >= 0; got {getattr(self, name)!r}")

    @property
    def topics(self) -> int:
        return max(1, self.items // self.items_per_topic)

    @property
    def nbytes(self) -> int:
        return self.items * self.dim * 4


def topic_model(spec: VectorSpec) -> tuple[np.ndarray, np.ndarray]:
    """(centres [topics, dim], bases [topics, dim, topic_rank]) of the mixture."""
    rng = np.random.default_rng([spec.seed, 0])
    centres = rng.standard_normal((spec.topics, spec.dim), dtype=np.float32)
    bases = rng.standard_normal((spec.topics, spec.dim, spec.topic_rank), dtype=np.float32)
    return centres, bases * np.float32(spec.topic_spread)


def generate_block(spec: VectorSpec, model: tuple[np.ndarray, np.ndarray], block: int) -> np.ndarray:
    """Rows [block * GENERATION_BLOCK_ROWS, ...) of the data set, from their own seeded stream."""
    start = block * GENERATION_BLOCK_ROWS
    rows = min(GENERATION_BLOCK_ROWS, spec.items - start)
    if rows <= 0:
        raise ValueError(f"block {block} starts at row {start}, past the {spec.items} items")
    centres, bases = model
    rng = np.random.default_rng([spec.seed, 1, block])
    labels = rng.integers(spec.topics, size=rows)
    factors = rng.standard_normal((rows, spec.topic_rank, 1), dtype=np.float32)
    vectors = centres[labels] + np.matmul(bases[labels], factors)[:, :, 0]
    vectors += np.float32(spec.noise) * rng.standard_normal((rows, spec.dim), dtype=np.float32)
    return normalize_rows(vectors)


def write_vectors(path: str, spec: VectorSpec) -> None:
    """The data set as a float32 .npy at `path`, one block in memory at a time; written to a temporary name
    and renamed, so a present file is complete."""
    model = topic_model(spec)
    temporary = f"{path}.tmp"
    header = {"descr": "<f4", "fortran_order": False, "shape": (spec.items, spec.dim)}
    with open(temporary, "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for block in range(-(-spec.items // GENERATION_BLOCK_ROWS)):
            f.write(generate_block(spec, model, block).tobytes())
    os.replace(temporary, path)


class MappedMatrix:
    """A float32 [rows, dim] .npy mapped read-only; `release` drops mapped pages from this process's RSS
    (they stay in the page cache, and a later read maps them back)."""

    def __init__(self, path: str):
        header = np.load(path, mmap_mode="r")  # only for its shape, dtype, order and data offset
        shape, dtype, offset = header.shape, header.dtype, header.offset
        c_order = header.flags.c_contiguous
        del header
        if not c_order or dtype != np.dtype("<f4") or len(shape) != 2:
            raise ValueError(
                f"{path}: expected a C-order float32 [rows, dim] array; got shape {shape}, dtype {dtype}, "
                f"C-contiguous={c_order}"
            )
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.path = path
        self.shape = tuple(shape)
        self._offset = offset
        self.array = np.frombuffer(self._map, dtype=np.float32, count=shape[0] * shape[1], offset=offset)
        self.array = self.array.reshape(shape)

    def release(self) -> None:
        """Hands every mapped page back (MADV_DONTNEED on a shared read-only file map: no data is lost)."""
        self._map.madvise(mmap.MADV_DONTNEED)

    def blocks(self, rows_per_block: int, release: bool = True):
        """(start, view of rows [start, start + rows_per_block)) in order; pages released after each."""
        for start in range(0, self.shape[0], rows_per_block):
            yield start, self.array[start : start + rows_per_block]
            if release:
                self.release()

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """A private copy of the given rows."""
        return np.ascontiguousarray(self.array[np.asarray(indices)])


def sample_rows(num_items: int, count: int, seed: int) -> np.ndarray:
    """`count` distinct row ids (all rows when there are fewer), sorted, seeded."""
    count = min(count, num_items)
    return np.sort(np.random.default_rng(seed).choice(num_items, size=count, replace=False))


def top_k_of_block(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(column ids, scores) of the k largest scores per row, unordered; all columns when there are fewer."""
    if scores.shape[1] <= k:
        ids = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        return np.array(ids), scores
    ids = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    return ids, np.take_along_axis(scores, ids, axis=1)


def merge_top_k(
    best_ids: np.ndarray, best_scores: np.ndarray, rows: np.ndarray, ids: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The k best per row of the current best ([q, k], unordered) and new candidates given as flat
    (row, id, score) triples: one lexsort by (row, -score), then the first k of each row."""
    num_queries, k = best_ids.shape
    all_rows = np.concatenate([np.repeat(np.arange(num_queries), k), rows])
    all_ids = np.concatenate([best_ids.ravel(), ids])
    all_scores = np.concatenate([best_scores.ravel(), scores])
    order = np.lexsort((-all_scores, all_rows))
    sorted_rows = all_rows[order]
    row_starts = np.searchsorted(sorted_rows, np.arange(num_queries))
    keep = order[np.arange(len(order)) - row_starts[sorted_rows] < k]
    return all_ids[keep].reshape(num_queries, k), all_scores[keep].reshape(num_queries, k)


def exact_top_k(blocks, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: (ids [q, k], scores [q, k]) of the k largest dot products, best first, over `blocks`
    ((start row, block) pairs, as `MappedMatrix.blocks` yields). One matmul per block; an argpartition
    until each query has k candidates, after that only the scores above a query's k-th best so far (few,
    once some blocks are seen) are merged in. Memory is bounded by the block size, not the number of items."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    queries = np.asarray(queries, dtype=np.float32)
    best_ids = np.full((len(queries), 0), -1, dtype=np.int64)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    for start, block in blocks:
        if block.shape[1] != queries.shape[1]:
            raise ValueError(f"queries have {queries.shape[1]} dimensions but the items {block.shape[1]}")
        block_scores = queries @ block.T
        if best_ids.shape[1] < k:
            ids, scores = top_k_of_block(block_scores, k)
            merged_ids = np.concatenate([best_ids, ids.astype(np.int64) + start], axis=1)
            merged_scores = np.concatenate([best_scores, scores], axis=1)
            keep, best_scores = top_k_of_block(merged_scores, k)
            best_ids = np.take_along_axis(merged_ids, keep, axis=1)
            continue
        rows, columns = np.nonzero(block_scores > best_scores.min(axis=1)[:, None])
        if len(rows):
            best_ids, best_scores = merge_top_k(
                best_ids, best_scores, rows, columns + start, block_scores[rows, columns]
            )
    if best_ids.shape[1] < k:
        raise ValueError(f"k={k} but there are only {best_ids.shape[1]} items")
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_ids, order, axis=1), np.take_along_axis(best_scores, order, axis=1)
