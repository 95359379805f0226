"""bench-quick's quality measure: exact cosine nearest neighbours -> planted recall."""

from __future__ import annotations

import numpy as np

from engagement_data.synthetic import planted_recall


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """[len(queries), k] indices of the k most cosine-similar rows of `vectors`, the query itself excluded."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), block):
        rows = queries[start : start + block]
        scores = unit[rows] @ unit.T
        scores[np.arange(len(rows)), rows] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[start : start + block] = np.take_along_axis(top, order, axis=1)
    return out


def recall_of_vectors(
    vectors: np.ndarray, item_ids: list[str], eligible: np.ndarray, truth: dict[str, list[str]], k: int
) -> float:
    """Planted recall@k of `vectors` (row i = item_ids[i]), searching and scoring only `eligible` rows."""
    ids = np.asarray(item_ids)[eligible]
    found = exact_neighbours(vectors[eligible], np.arange(len(eligible)), k)
    neighbours = {ids[q]: ids[found[q]].tolist() for q in range(len(eligible))}
    return planted_recall(neighbours, truth, k, vocabulary=set(ids.tolist()))
