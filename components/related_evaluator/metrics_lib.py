"""Offline metrics of related-item lists, as pure functions.

The protocol (one for every candidate source): each evaluation query is (query item, the item the user engaged
with next); a source answers with a ranked list for the query item (the query itself excluded). A hit at K is
the target within the first K answers; MRR@K averages 1/rank over hits within K (0 otherwise). Metrics are
also broken down by the query item's popularity bucket: co-occurrence and embeddings differ most on the tail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_KS = (10, 20, 50)
BUCKETS = ("head", "torso", "tail")


@dataclass(frozen=True)
class Query:
    item: str
    target: str


def paired_mean_difference(values: np.ndarray, reference: np.ndarray, z: float = 1.96) -> dict:
    """Mean of one source's per-query scores (e.g. precision@10) minus a reference's on the same queries,
    with a normal-approximation interval of the per-query differences (z=1.96: 95%)."""
    values, reference = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if values.shape != reference.shape:
        raise ValueError(f"paired values differ in shape: {values.shape} vs {reference.shape}")
    differences = values - reference
    n = len(differences)
    difference = float(differences.mean()) if n else 0.0
    half_width = z * float(differences.std(ddof=1)) / np.sqrt(n) if n > 1 else float("inf")  # 1: no spread
    return {
        "queries": n,
        "difference": difference,
        "low": difference - half_width,
        "high": difference + half_width,
    }


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


def item_buckets(counts: np.ndarray) -> np.ndarray:
    """`popularity_buckets` over catalogue rows: int8 index into BUCKETS per row (rows sorted by id, so the
    tie-break by id is the tie-break by row). Rows with count 0 (no engagements) come last: tail."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    order = np.lexsort((np.arange(len(counts)), -counts))
    before = np.cumsum(counts[order]) - counts[order]
    share = before / total if total else np.ones(len(counts))
    buckets = np.empty(len(counts), dtype=np.int8)
    buckets[order] = np.where(share < 1 / 3, 0, np.where(share < 2 / 3, 1, 2))
    return buckets


def query_buckets(items: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """The bucket index of each query item (`item_buckets` per catalogue row); unknown items (-1) are tail."""
    return np.where(items >= 0, np.asarray(buckets)[np.maximum(items, 0)], len(BUCKETS) - 1)


def answer_ranks(rows: np.ndarray, items: np.ndarray, targets: np.ndarray, depth: int) -> tuple:
    """The protocol on [Q, width] candidate rows (-1 padded) at once: the query item removed, the rest cut to
    `depth`. Returns (rank of the target, 0 when absent; position of each slot in the cleaned list, 0 where
    the slot is dropped)."""
    rows = np.asarray(rows)[:, : depth + 1]
    items = np.asarray(items)[:, None]
    valid = (rows >= 0) & (rows != items)
    position = np.cumsum(valid, axis=1, dtype=np.int32)
    position[~valid | (position > depth)] = 0
    hit = (position > 0) & (rows == np.asarray(targets)[:, None])
    first = hit.argmax(axis=1) if rows.shape[1] else np.zeros(len(rows), dtype=np.int64)
    ranks = np.where(hit.any(axis=1), position[np.arange(len(rows)), first], 0) if rows.shape[1] else first
    return ranks.astype(np.int64), position


def rank_hit_rate(ranks: np.ndarray, k: int) -> float:
    """HR@k: the share of queries whose target is within the first k answers. `ranks` are 1-based, 0 where
    the target is absent (what `answer_ranks` produces)."""
    ranks = np.asarray(ranks)
    return int(((ranks > 0) & (ranks <= k)).sum()) / len(ranks) if len(ranks) else 0.0


def rank_mrr(ranks: np.ndarray, k: int) -> float:
    """MRR@k: 1/rank for targets within the first k answers, 0 otherwise, averaged over all queries
    (`ranks` as in `rank_hit_rate`)."""
    ranks = np.asarray(ranks)
    hit = (ranks > 0) & (ranks <= k)
    return float((1.0 / ranks[hit]).sum()) / len(ranks) if len(ranks) else 0.0


def _summary_of(ranks: np.ndarray, ks: Sequence[int]) -> dict:
    return {
        "queries": len(ranks),
        "hit_rate": {str(k): rank_hit_rate(ranks, k) for k in ks},
        "mrr": {str(k): rank_mrr(ranks, k) for k in ks},
    }


def evaluate_rows(
    items: np.ndarray,
    targets: np.ndarray,
    rows: np.ndarray,
    buckets: np.ndarray,
    catalogue_size: int,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict:
    """Metrics of one source's answers: `rows` [Q, width] are the candidate rows (-1 padded) answered for
    query items `items` (-1: unknown, an all -1 row), `targets` the engaged rows (-1 never hits), `buckets`
    the bucket index (item_buckets) of every catalogue row; unknown query items count as tail."""
    if catalogue_size <= 0:
        raise ValueError(f"catalogue_size must be > 0, got {catalogue_size}")
    if len(rows) != len(items):
        raise ValueError(f"a source answered {len(rows)} lists for {len(items)} queries")
    items = np.asarray(items, dtype=np.int64)
    ranks, position = answer_ranks(rows, items, targets, max(ks))
    result = _summary_of(ranks, ks)
    rows = np.asarray(rows)[:, : max(ks) + 1]
    result["coverage"] = {
        str(k): len(np.unique(rows[(position > 0) & (position <= k)])) / catalogue_size for k in ks
    }
    result["answered"] = float((position > 0).any(axis=1).mean()) if len(items) else 0.0
    query_bucket = query_buckets(items, buckets)
    result["buckets"] = {
        bucket: _summary_of(ranks[query_bucket == b], ks) for b, bucket in enumerate(BUCKETS)
    }
    return result


def evaluate_source(
    queries: Sequence[Query],
    answer: Callable[[Sequence[str], int], Sequence[Sequence[str]]],
    buckets: Mapping[str, str],
    catalogue_size: int,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict:
    """Metrics of one source over `queries`, for sources that answer id lists (gensim, trainer sweeps).

    `answer(query_items, k)` returns one ranked list per query item (empty when the source knows nothing about
    it); lists are truncated to max(ks) and the query item is removed if a source returned it. Queries whose
    item has no bucket (unknown to the training data) count as tail. The same figures as `evaluate_rows`,
    which this maps the ids onto.
    """
    depth = max(ks)
    lists = answer([q.item for q in queries], depth + 1)
    if len(lists) != len(queries):
        raise ValueError(f"a source answered {len(lists)} lists for {len(queries)} queries")
    rows_of: dict[str, int] = {}
    index = lambda item: rows_of.setdefault(item, len(rows_of))  # noqa: E731
    items = np.array([index(q.item) for q in queries], dtype=np.int64)
    targets = np.array([index(q.target) for q in queries], dtype=np.int64)
    rows = np.full((len(queries), depth + 1), -1, dtype=np.int64)
    for row, ranked in enumerate(lists):
        ranked = list(ranked)[: depth + 1]
        rows[row, : len(ranked)] = [index(c) for c in ranked]
    bucket_index = {bucket: b for b, bucket in enumerate(BUCKETS)}
    by_row = np.full(len(rows_of), len(BUCKETS) - 1, dtype=np.int8)
    for item, row in rows_of.items():
        by_row[row] = bucket_index[buckets.get(item, BUCKETS[-1])]
    return evaluate_rows(items, targets, rows, by_row, catalogue_size, ks)


def paired_difference(hits: np.ndarray, reference_hits: np.ndarray, z: float = 1.96) -> dict:
    """HR of one source minus a reference's on the same queries, with a normal-approximation interval of
    the per-query differences (z=1.96: 95%).

    Pairing is what makes small differences readable: both sources answer the same queries, so only the
    queries where exactly one of them hits (`wins`, `losses`) carry the difference and its noise. Two HRs
    of 0.125 on 943 queries each have a standard error of 0.011; the paired interval of their difference is
    narrower the more queries both sources hit or both miss.
    """
    hits, reference_hits = np.asarray(hits, dtype=bool), np.asarray(reference_hits, dtype=bool)
    if hits.shape != reference_hits.shape:
        raise ValueError(f"paired hits differ in shape: {hits.shape} vs {reference_hits.shape}")
    n = len(hits)
    wins, losses = int((hits & ~reference_hits).sum()), int((~hits & reference_hits).sum())
    difference = (wins - losses) / n if n else 0.0
    variance = (wins + losses) / n - difference**2 if n else 0.0
    half_width = z * np.sqrt(max(variance, 0.0) / n) if n else 0.0
    return {
        "queries": n,
        "wins": wins,
        "losses": losses,
        "difference": difference,
        "low": difference - half_width,
        "high": difference + half_width,
    }


def compare_rows(
    items: np.ndarray,
    targets: np.ndarray,
    rows: np.ndarray,
    reference_rows: np.ndarray,
    buckets: np.ndarray,
    k: int = 10,
) -> dict:
    """`paired_difference` of HR@k between two sources' answers to the same queries, overall and by the
    query item's popularity bucket (as in `evaluate_rows`)."""
    items = np.asarray(items, dtype=np.int64)
    hits = answer_ranks(rows, items, targets, k)[0] > 0
    reference_hits = answer_ranks(reference_rows, items, targets, k)[0] > 0
    query_bucket = query_buckets(items, buckets)
    result = paired_difference(hits, reference_hits)
    result["buckets"] = {
        bucket: paired_difference(hits[query_bucket == b], reference_hits[query_bucket == b])
        for b, bucket in enumerate(BUCKETS)
    }
    return result
