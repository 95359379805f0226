"""metrics_lib against hand-computed cases."""

import pytest

from components.related_evaluator import metrics_lib as m
from components.related_evaluator.metrics_lib import Query


def test_ranks_hit_rates_and_mrr_by_hand():
    ranks = [1, 3, None, 12]
    assert m.hit_rate(ranks, 1) == 0.25
    assert m.hit_rate(ranks, 10) == 0.5
    assert m.hit_rate(ranks, 20) == 0.75
    assert m.mean_reciprocal_rank(ranks, 10) == pytest.approx((1 + 1 / 3) / 4)
    assert m.mean_reciprocal_rank(ranks, 20) == pytest.approx((1 + 1 / 3 + 1 / 12) / 4)
    assert m.hit_rate([], 10) == m.mean_reciprocal_rank([], 10) == 0.0
    assert m.target_rank(["a", "b", "c"], "c") == 3
    assert m.target_rank(["a"], "z") is None


def test_coverage_counts_distinct_items_within_k():
    answers = [["a", "b", "c"], ["a", "d"], []]
    assert m.catalogue_coverage(answers, 2, 10) == 0.3  # a, b, d
    assert m.catalogue_coverage(answers, 3, 4) == 1.0
    with pytest.raises(ValueError, match="catalogue_size"):
        m.catalogue_coverage(answers, 2, 0)


def test_popularity_buckets_split_engagements_in_thirds():
    counts = {"a": 50, "b": 20, "c": 10, "d": 10, "e": 5, "f": 5}  # total 100
    buckets = m.popularity_buckets(counts)
    # a starts at 0% (head); b starts at 50% (torso); c at 70%, d at 80%, e at 90%, f at 95% (tail)
    assert buckets == {"a": "head", "b": "torso", "c": "tail", "d": "tail", "e": "tail", "f": "tail"}


def test_evaluate_source_removes_the_query_and_breaks_down_by_bucket():
    queries = [Query("a", "b"), Query("b", "c"), Query("c", "a"), Query("x", "a")]
    lists = {"a": ["a", "b", "c"], "b": ["a", "c"], "c": ["b", "d"]}

    def answer(items, k):
        return [lists.get(item, [])[:k] for item in items]

    buckets = {"a": "head", "b": "torso", "c": "tail"}
    result = m.evaluate_source(queries, answer, buckets, catalogue_size=4, ks=(1, 2))
    # a: "a" removed, b at rank 1; b: c at rank 2; c: a absent; x: unknown.
    assert result["hit_rate"] == {"1": 0.25, "2": 0.5}
    assert result["mrr"]["2"] == pytest.approx((1 + 0.5) / 4)
    assert result["answered"] == 0.75
    assert result["coverage"] == {"1": 0.5, "2": 1.0}  # top-1: b, a, b; top-2 adds c and d
    assert result["buckets"]["head"]["hit_rate"]["1"] == 1.0
    assert result["buckets"]["torso"]["hit_rate"] == {"1": 0.0, "2": 1.0}
    assert result["buckets"]["tail"]["queries"] == 2  # c and the unknown x
