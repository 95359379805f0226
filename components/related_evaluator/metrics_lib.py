"""Offline metrics of related-item lists, as pure functions.

The protocol (one for every candidate source): each evaluation query is (query item, the item the user engaged
with next); a source answers with a ranked list for the query item (the query itself excluded). A hit at K is
the target within the first K answers; MRR@K averages 1/rank over hits within K (0 otherwise). Metrics are
also broken down by the query item's popularity bucket: co-occurrence and embeddings differ most on the tail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

DEFAULT_KS = (10, 20, 50)
BUCKETS = ("head", "torso", "tail")


@dataclass(frozen=True)
class Query:
    item: str
    target: str


def target_rank(ranked: Sequence[str], target: str) -> int | None:
    """1-based rank of `target` in `ranked`, None when absent."""
    for position, candidate in enumerate(ranked, 1):
        if candidate == target:
            return position
    return None


def hit_rate(ranks: Sequence[int | None], k: int) -> float:
    """Share of queries whose target is within the first k answers."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None], k: int) -> float:
    """MRR@k: 1/rank for targets within the first k answers, 0 otherwise, averaged over all queries."""
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r is not None and r <= k) / len(ranks)


def catalogue_coverage(answers: Sequence[Sequence[str]], k: int, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one top-k answer: low means a popularity echo."""
    if catalogue_size <= 0:
        raise ValueError(f"catalogue_size must be > 0, got {catalogue_size}")
    return len({item for answer in answers for item in answer[:k]}) / catalogue_size


def popularity_buckets(counts: Mapping[str, int]) -> dict[str, str]:
    """Item -> head / torso / tail: the most engaged items that make up the first third of all engagements
    are the head, the next third the torso, the rest the tail (ties broken by item id, for determinism)."""
    total = sum(counts.values())
    buckets: dict[str, str] = {}
    running = 0
    for item, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        share_before = running / total if total else 1.0
        buckets[item] = (
            BUCKETS[0] if share_before < 1 / 3 else BUCKETS[1] if share_before < 2 / 3 else BUCKETS[2]
        )
        running += count
    return buckets


def _summary(ranks: Sequence[int | None], ks: Sequence[int]) -> dict:
    return {
        "queries": len(ranks),
        "hit_rate": {str(k): hit_rate(ranks, k) for k in ks},
        "mrr": {str(k): mean_reciprocal_rank(ranks, k) for k in ks},
    }


def evaluate_source(
    queries: Sequence[Query],
    answer: Callable[[Sequence[str], int], Sequence[Sequence[str]]],
    buckets: Mapping[str, str],
    catalogue_size: int,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict:
    """Metrics of one source over `queries`.

    `answer(query_items, k)` returns one ranked list per query item (empty when the source knows nothing about
    it); lists are truncated to max(ks) and the query item is removed if a source returned it. Queries whose
    item has no bucket (unknown to the training data) count as tail.
    """
    depth = max(ks)
    lists = answer([q.item for q in queries], depth + 1)
    if len(lists) != len(queries):
        raise ValueError(f"a source answered {len(lists)} lists for {len(queries)} queries")
    cleaned = [[c for c in ranked if c != q.item][:depth] for q, ranked in zip(queries, lists, strict=True)]
    ranks = [target_rank(ranked, q.target) for q, ranked in zip(queries, cleaned, strict=True)]
    result = _summary(ranks, ks)
    result["coverage"] = {str(k): catalogue_coverage(cleaned, k, catalogue_size) for k in ks}
    result["answered"] = sum(1 for ranked in cleaned if ranked) / len(cleaned) if cleaned else 0.0
    result["buckets"] = {}
    for bucket in BUCKETS:
        chosen = [
            r for q, r in zip(queries, ranks, strict=True) if buckets.get(q.item, BUCKETS[-1]) == bucket
        ]
        result["buckets"][bucket] = _summary(chosen, ks)
    return result
