"""The reranker's embedding features of candidate pools: cosine, the network's next-engagement score and the
euclidean distance between hidden layers, for every pool entry at once.

Each pool has one query, so its vectors are read once per pool and multiplied with the pool's candidate rows
as one batched matrix product, instead of being copied next to every entry: at 20M events the reranker scores
772k pools of about 250 candidates, and the per-entry copies of query and candidate vectors (and their
difference, for the distance) were three quarters of the pool features' time. The distance comes from the
same products and precomputed norms: |q - c|^2 = |q|^2 + |c|^2 - 2 q.c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POOLS_PER_PRODUCT = 256  # pools gathered together: bounds the padded [pools, width, dim] temporary


@dataclass(frozen=True)
class PoolVectors:
    """What the features are computed from, rows as the index's vectors."""

    vectors: np.ndarray  # [V, dim], unit rows (the cosine index's own vectors)
    hidden: np.ndarray | None = None  # [V, dim] raw hidden layers (None: no next score or distance)
    softmax_rows: np.ndarray | None = None  # [V, dim] the output layer's rows
    hidden_squared_norms: np.ndarray | None = None  # float64 [V]; made from `hidden` when not given

    @staticmethod
    def of(vectors: np.ndarray, hidden: np.ndarray | None, softmax_rows: np.ndarray | None) -> PoolVectors:
        if hidden is None or softmax_rows is None:
            return PoolVectors(vectors)
        squared = np.einsum("ij,ij->i", hidden, hidden, dtype=np.float64)
        return PoolVectors(vectors, hidden, softmax_rows, squared)


@dataclass(frozen=True)
class _Block:
    """A run of consecutive pools as a padded [pools, width] matrix of candidate rows."""

    padded: np.ndarray  # int64 [pools, width]: candidate rows (0 in padding and where a row is -1)
    queries: np.ndarray  # int64 [pools]: query rows (0 where -1)
    owner: np.ndarray  # int64 [entries]: each entry's pool in the block
    column: np.ndarray  # int64 [entries]: its position in the pool
    has: np.ndarray  # bool [entries]: both sides have vectors

    def products(self, query_side: np.ndarray, candidate_side: np.ndarray) -> np.ndarray:
        """query_side[query] . candidate_side[candidate] per entry (0 where `has` is false)."""
        product = np.matmul(candidate_side[self.padded], query_side[self.queries][:, :, None])[:, :, 0]
        return np.where(self.has, product[self.owner, self.column], 0.0)


def _block(starts: np.ndarray, pools: slice, query_rows: np.ndarray, candidate_rows: np.ndarray) -> _Block:
    sizes = np.diff(starts[pools.start : pools.stop + 1])
    lo, hi = int(starts[pools.start]), int(starts[pools.stop])
    owner = np.repeat(np.arange(len(sizes)), sizes)
    column = np.arange(hi - lo) - (starts[pools.start : pools.stop] - lo)[owner]
    padded = np.zeros((len(sizes), int(sizes.max())), dtype=np.int64)
    padded[owner, column] = np.maximum(candidate_rows[lo:hi], 0)
    has = (candidate_rows[lo:hi] >= 0) & (query_rows[pools] >= 0)[owner]
    return _Block(padded, np.maximum(query_rows[pools], 0), owner, column, has)


def pool_vector_features(
    starts: np.ndarray, query_rows: np.ndarray, candidate_rows: np.ndarray, arrays: PoolVectors
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cosine, next score, euclidean distance) per entry of the flattened pools (pool i: entries
    starts[i]:starts[i+1]); `query_rows` [pools] and `candidate_rows` [entries] are rows of the vectors, -1
    where an item has none, and an entry where either side has none gets 0 for all three."""
    entries = len(candidate_rows)
    cosine, next_score, distance = np.zeros(entries), np.zeros(entries), np.zeros(entries)
    for first in range(0, len(starts) - 1, POOLS_PER_PRODUCT):
        pools = slice(first, min(first + POOLS_PER_PRODUCT, len(starts) - 1))
        lo, hi = int(starts[pools.start]), int(starts[pools.stop])
        if hi == lo:
            continue
        block = _block(starts, pools, query_rows, candidate_rows)
        cosine[lo:hi] = block.products(arrays.vectors, arrays.vectors)
        if arrays.hidden is not None:
            next_score[lo:hi] = block.products(arrays.hidden, arrays.softmax_rows)
            norms = arrays.hidden_squared_norms
            squared = (
                norms[block.queries][block.owner]
                + norms[np.maximum(candidate_rows[lo:hi], 0)]
                - 2.0 * block.products(arrays.hidden, arrays.hidden)
            )
            distance[lo:hi] = np.where(block.has, np.sqrt(np.maximum(squared, 0.0)), 0.0)
    return cosine, next_score, distance
