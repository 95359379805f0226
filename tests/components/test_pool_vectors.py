"""The pools' embedding features against a per-entry computation: blocks of pools, empty pools, items
without vectors."""

import numpy as np
import pytest

from components.related_evaluator import pool_vectors
from components.related_evaluator.pool_vectors import PoolVectors, pool_vector_features


@pytest.mark.parametrize("pools_per_product", [1, 3, 256])
def test_features_equal_a_per_entry_computation(monkeypatch, pools_per_product):
    monkeypatch.setattr(pool_vectors, "POOLS_PER_PRODUCT", pools_per_product)
    rng = np.random.default_rng(pools_per_product)
    hidden, softmax_rows = rng.normal(size=(2, 30, 8))
    hidden[4] = 0.0  # an all-zero hidden layer: its unit row is zero too
    norms = np.linalg.norm(hidden, axis=1, keepdims=True)
    vectors = np.divide(hidden, norms, out=np.zeros_like(hidden), where=norms > 0)
    sizes = rng.integers(0, 9, size=20)  # empty pools included
    starts = np.concatenate([[0], np.cumsum(sizes)])
    query_rows = rng.integers(-1, 30, size=20)  # -1: the query has no vector
    candidate_rows = rng.integers(-1, 30, size=int(starts[-1]))

    cosine, next_score, distance = pool_vector_features(
        starts, query_rows, candidate_rows, PoolVectors.of(vectors, hidden, softmax_rows)
    )

    owner = np.repeat(np.arange(20), sizes)
    for entry, (q, c) in enumerate(zip(query_rows[owner], candidate_rows, strict=True)):
        if q < 0 or c < 0:
            assert cosine[entry] == next_score[entry] == distance[entry] == 0.0
            continue
        assert cosine[entry] == pytest.approx(vectors[q] @ vectors[c], abs=1e-9)
        assert next_score[entry] == pytest.approx(hidden[q] @ softmax_rows[c], abs=1e-9)
        assert distance[entry] == pytest.approx(np.linalg.norm(hidden[q] - hidden[c]), abs=1e-6)
    assert (candidate_rows[query_rows[owner] >= 0] >= 0).sum() > 50  # most entries were computed


def test_without_hidden_layers_only_the_cosine_is_filled():
    vectors = np.eye(3)
    cosine, next_score, distance = pool_vector_features(
        np.array([0, 2]), np.array([0]), np.array([0, 1]), PoolVectors.of(vectors, None, None)
    )
    assert cosine.tolist() == [1.0, 0.0] and not next_score.any() and not distance.any()
