"""metrics_lib against hand-computed cases."""

import numpy as np
import pytest

from components.related_evaluator import catalogue_lib
from components.related_evaluator import metrics_lib as m
from components.related_evaluator.metrics_lib import Query

# The per-query protocol written out one query at a time (the evaluator's original code): the oracle that
# metrics_lib's array functions, the one implementation everything else uses, must reproduce.


def target_rank(ranked, target):
    """1-based rank of `target` in `ranked`, None when absent."""
    return next((position for position, c in enumerate(ranked, 1) if c == target), None)


def hit_rate(ranks, k):
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def mean_reciprocal_rank(ranks, k):
    return sum(1.0 / r for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def catalogue_coverage(answers, k, catalogue_size):
    return len({item for answer in answers for item in answer[:k]}) / catalogue_size


def test_ranks_hit_rates_and_mrr_by_hand():
    ranks = np.array([1, 3, 0, 12])  # 0: the target is absent
    assert m.rank_hit_rate(ranks, 1) == 0.25
    assert m.rank_hit_rate(ranks, 10) == 0.5
    assert m.rank_hit_rate(ranks, 20) == 0.75
    assert m.rank_mrr(ranks, 10) == pytest.approx((1 + 1 / 3) / 4)
    assert m.rank_mrr(ranks, 20) == pytest.approx((1 + 1 / 3 + 1 / 12) / 4)
    assert m.rank_hit_rate(np.array([], int), 10) == m.rank_mrr(np.array([], int), 10) == 0.0


def test_coverage_counts_distinct_items_within_k():
    lists = {"q1": ["a", "b", "c"], "q2": ["a", "d"]}

    def answer(items, k):
        return [lists.get(item, [])[:k] for item in items]

    queries = [Query("q1", "a"), Query("q2", "a"), Query("q3", "a")]
    result = m.evaluate_source(queries, answer, {}, catalogue_size=10, ks=(2, 3))
    assert result["coverage"] == {"2": 0.3, "3": 0.4}  # a, b, d; then c
    with pytest.raises(ValueError, match="catalogue_size"):
        m.evaluate_source(queries, answer, {}, catalogue_size=0, ks=(2,))


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


def reference_evaluate(queries, lists, buckets, catalogue_size, ks):
    """The per-query protocol the arrays must reproduce (the evaluator's original code)."""
    depth = max(ks)
    cleaned = [[c for c in lists.get(q.item, [])[: depth + 1] if c != q.item][:depth] for q in queries]
    ranks = [target_rank(ranked, q.target) for q, ranked in zip(queries, cleaned, strict=True)]

    def summary(chosen):
        return {
            "queries": len(chosen),
            "hit_rate": {str(k): hit_rate(chosen, k) for k in ks},
            "mrr": {str(k): mean_reciprocal_rank(chosen, k) for k in ks},
        }

    result = summary(ranks)
    result["coverage"] = {str(k): catalogue_coverage(cleaned, k, catalogue_size) for k in ks}
    result["answered"] = sum(1 for ranked in cleaned if ranked) / len(cleaned) if cleaned else 0.0
    result["buckets"] = {
        bucket: summary(
            [r for q, r in zip(queries, ranks, strict=True) if buckets.get(q.item, "tail") == bucket]
        )
        for bucket in m.BUCKETS
    }
    return result


def assert_same_metrics(got, expected):
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same_metrics(got[key], value)
        else:
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_metrics_equal_the_per_query_reference(seed):
    rng = np.random.default_rng(seed)
    names = [f"i{n:02d}" for n in range(40)]
    catalogue = catalogue_lib.catalogue_of(names)
    lists = {}
    for item in names[:30]:  # the rest: items the source does not know (empty rows)
        size = int(rng.integers(0, 14))
        lists[item] = [
            str(c) for c in rng.choice(names, size=size, replace=False)
        ]  # may hold the item itself
    source = catalogue_lib.source_from_lists(
        {i: [(c, 1.0) for c in r] for i, r in lists.items()}, catalogue, 14
    )
    counts = {item: int(rng.integers(0, 9)) for item in names[::2]}
    pairs = [(str(rng.choice(names)), str(rng.choice(names))) for _ in range(300)]
    pairs += [("unknown", names[0]), (names[1], "unknown")]  # outside the catalogue: never hit, tail
    queries = [Query(a, b) for a, b in pairs]
    ks = (1, 3, 10)
    expected = reference_evaluate(queries, lists, m.popularity_buckets(counts), len(names), ks)
    counts_by_row = np.zeros(len(names), dtype=np.int64)
    counts_by_row[catalogue.rows(list(counts))] = list(counts.values())
    items, targets = catalogue.rows([a for a, _ in pairs]), catalogue.rows([b for _, b in pairs])
    got = m.evaluate_rows(items, targets, source.rows(items), m.item_buckets(counts_by_row), len(names), ks)
    assert_same_metrics(got, expected)
    # ... and the id-list front end (gensim, trainer sweeps) maps onto the same figures.
    answer = lambda items, k: [lists.get(item, [])[:k] for item in items]  # noqa: E731
    assert_same_metrics(
        m.evaluate_source(queries, answer, m.popularity_buckets(counts), len(names), ks), expected
    )


def test_item_buckets_equal_the_dict_buckets_with_ties():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, size=50)  # many ties, zeros
    names = [f"i{n:02d}" for n in range(50)]
    by_name = m.popularity_buckets({n: int(c) for n, c in zip(names, counts, strict=True) if c > 0})
    buckets = m.item_buckets(counts)
    assert [m.BUCKETS[b] for b in buckets] == [by_name.get(n, "tail") for n in names]
    assert m.item_buckets(np.zeros(3, dtype=np.int64)).tolist() == [2, 2, 2]


def test_paired_difference_by_hand():
    hits = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    reference = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    d = m.paired_difference(hits, reference)
    # wins at queries 1 and 4, a loss at 2: difference 0.1; per-query variance 3/10 - 0.1^2 = 0.29
    assert (d["queries"], d["wins"], d["losses"]) == (10, 2, 1)
    assert d["difference"] == pytest.approx(0.1)
    half = 1.96 * np.sqrt(0.29 / 10)
    assert (d["low"], d["high"]) == (pytest.approx(0.1 - half), pytest.approx(0.1 + half))


def test_paired_difference_of_identical_answers_is_exactly_zero_and_empty_is_zero():
    same = np.array([1, 0, 1], dtype=bool)
    assert m.paired_difference(same, same) == {
        "queries": 3,
        "wins": 0,
        "losses": 0,
        "difference": 0.0,
        "low": 0.0,
        "high": 0.0,
    }
    assert m.paired_difference(np.array([], dtype=bool), np.array([], dtype=bool))["difference"] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        m.paired_difference(same, same[:2])


def test_compare_rows_pairs_hits_per_query_and_per_bucket():
    # Rows 0..3; buckets: 0 head, 1 torso, 2 and 3 tail. Queries (item -> target): 0->1, 1->2, 2->3, 3->0.
    items, targets = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
    buckets = np.array([0, 1, 2, 2], dtype=np.int8)
    rows = np.array([[0, 1], [2, -1], [0, -1], [1, -1]])  # hits the first two (the query 0 is skipped)
    reference = np.array([[2, -1], [2, -1], [3, -1], [0, -1]])  # hits the last three
    result = m.compare_rows(items, targets, rows, reference, buckets, k=1)
    assert (result["wins"], result["losses"], result["difference"]) == (1, 2, -0.25)
    assert result["buckets"]["head"]["wins"] == 1 and result["buckets"]["torso"]["difference"] == 0.0
    assert (result["buckets"]["tail"]["losses"], result["buckets"]["tail"]["queries"]) == (2, 2)


def test_paired_mean_difference_by_hand():
    result = m.paired_mean_difference([0.3, 0.5, 0.1, 0.3], [0.1, 0.2, 0.1, 0.2])
    differences = np.array([0.2, 0.3, 0.0, 0.1])
    half = 1.96 * differences.std(ddof=1) / 2
    assert result["difference"] == pytest.approx(0.15)
    assert (result["low"], result["high"]) == pytest.approx((0.15 - half, 0.15 + half))
    single = m.paired_mean_difference([0.4], [0.1])
    assert (
        single["difference"] == pytest.approx(0.3) and single["low"] < 0 < single["high"]
    )  # one query: no interval
    with pytest.raises(ValueError, match="shape"):
        m.paired_mean_difference([0.1, 0.2], [0.1])


def test_rank_arrays_give_the_same_rates_as_rank_lists():
    ranks = [1, None, 3, 12]
    array = np.array([0 if r is None else r for r in ranks])
    for k in (1, 3, 10, 20):
        assert m.rank_hit_rate(array, k) == hit_rate(ranks, k)
        assert m.rank_mrr(array, k) == pytest.approx(mean_reciprocal_rank(ranks, k))
    assert m.rank_hit_rate(np.array([], int), 10) == m.rank_mrr(np.array([], int), 10) == 0.0
