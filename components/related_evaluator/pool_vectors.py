"""The reranker's embedding features of candidate pools: cosine, the network's next-engagement score and the
euclidean distance between hidden layers, for every pool entry at once.

Each pool has one query, so its vectors are read once per pool and multiplied with the pool's candidate rows
in one batched product per block of pools of about one size, instead of being copied next to every entry:
the reranker scores every catalogue item's pool (772k pools of about 250 candidates at 20M events), and
those per-entry copies (and the difference of the hidden layers, for the distance) were most of the pool
features' time. The distance comes from the same products and precomputed norms:
|q - c|^2 = |q|^2 + |c|^2 - 2 q.c.
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
    hidden_squared_norms: np.ndarray | None = None  # float64 [V], |hidden row|^2

    @staticmethod
    def of(vectors: np.ndarray, hidden: np.ndarray | None, softmax_rows: np.ndarray | None) -> PoolVectors:
        """With the hidden layers' norms; cosine only when either network array is missing."""
        if hidden is None or softmax_rows is None:
            return PoolVectors(vectors)
        squared = np.einsum("ij,ij->i", hidden, hidden, dtype=np.float64)
        return PoolVectors(vectors, hidden, softmax_rows, squared)


@dataclass(frozen=True)
class _Block:
    """Pools of about one size as a padded [pools, width] matrix of their entries."""

    entries: np.ndarray  # int64 [pools, width]: entry numbers (0 in padding)
    filled: np.ndarray  # bool [pools, width]: a real entry whose two items both have vectors
    queries: np.ndarray  # int64 [pools]: query rows (0 where -1)
    candidates: np.ndarray  # int64 [pools, width]: candidate rows (0 where -1 or padding)

    def products(self, query_side: np.ndarray, candidate_side: np.ndarray) -> np.ndarray:
        """query_side[query] . candidate_side[candidate] of the filled entries (`entries[filled]` order)."""
        # einsum, not a stacked matmul: numpy runs [pools] small matrix-vector products 2-3x slower that way
        return np.einsum("bwd,bd->bw", candidate_side[self.candidates], query_side[self.queries])[self.filled]


def _block(
    starts: np.ndarray, pools: np.ndarray, query_rows: np.ndarray, candidate_rows: np.ndarray
) -> _Block:
    sizes = starts[pools + 1] - starts[pools]
    width = np.arange(int(sizes.max()))
    real = width[None, :] < sizes[:, None]
    entries = np.where(real, starts[pools][:, None] + width[None, :], 0)
    rows = candidate_rows[entries]
    filled = real & (rows >= 0) & (query_rows[pools] >= 0)[:, None]
    return _Block(entries, filled, np.maximum(query_rows[pools], 0), np.where(filled, rows, 0))


def pool_vector_features(
    starts: np.ndarray, query_rows: np.ndarray, candidate_rows: np.ndarray, arrays: PoolVectors
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cosine, next score, euclidean distance) per entry of the flattened pools (pool i: entries
    starts[i]:starts[i+1]); `query_rows` [pools] and `candidate_rows` [entries] are rows of the vectors, -1
    where an item has none, and an entry where either side has none gets 0 for all three.

    Pools are taken in order of size, so a block's pools pad little (pool sizes vary from a few to
    hundreds)."""
    entries = len(candidate_rows)
    cosine, next_score, distance = np.zeros(entries), np.zeros(entries), np.zeros(entries)
    sizes = np.diff(starts)
    by_size = np.argsort(sizes, kind="stable")
    by_size = by_size[sizes[by_size] > 0]
    for first in range(0, len(by_size), POOLS_PER_PRODUCT):
        block = _block(starts, by_size[first : first + POOLS_PER_PRODUCT], query_rows, candidate_rows)
        where = block.entries[block.filled]
        cosine[where] = block.products(arrays.vectors, arrays.vectors)
        if arrays.hidden is not None:
            next_score[where] = block.products(arrays.hidden, arrays.softmax_rows)
            norms = arrays.hidden_squared_norms
            squared = (
                np.broadcast_to(norms[block.queries][:, None], block.filled.shape)[block.filled]
                + norms[block.candidates[block.filled]]
                - 2.0 * block.products(arrays.hidden, arrays.hidden)
            )
            distance[where] = np.sqrt(np.maximum(squared, 0.0))
    return cosine, next_score, distance
