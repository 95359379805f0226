"""Blending Pin2Vec neighbours with co-occurrence candidates, as pure functions.

Weighted reciprocal-rank fusion: a candidate scores weight / (rrf_k + its Pin2Vec rank) plus
(1 - weight) / (rrf_k + its co-occurrence rank), a missing rank adding nothing. Ranks, not raw scores, are
fused because cosine similarities and co-occurrence counts live on unrelated scales. Where an item is too
sparse for a trustworthy embedding only co-occurrence speaks; where co-occurrence knows too few candidates,
the embedding neighbours fill the list (fusion does that by itself: they are the only ones left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BlendSettings:
    """The weight grid searched on the validation split, and the fusion constants."""

    weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    rrf_k: float = 10.0  # smaller: the top of each list dominates; the evaluator searches `rrf_ks`
    rrf_ks: tuple[float, ...] = (1.0, 10.0, 60.0)  # 60: Cormack et al.'s constant; 1: nearly rank-by-rank
    min_embedding_count: int = 0  # items engaged fewer times use co-occurrence only (0: never)
    top_n: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        if not self.weights or any(not 0.0 <= w <= 1.0 for w in self.weights):
            raise ValueError(f"weights={self.weights!r} is invalid: expected a non-empty list in [0, 1]")
        object.__setattr__(self, "rrf_ks", tuple(float(k) for k in self.rrf_ks))
        if self.rrf_k < 0 or any(k < 0 for k in self.rrf_ks):
            raise ValueError(f"rrf_k={self.rrf_k!r} / rrf_ks={self.rrf_ks!r} are invalid: expected >= 0")
        if self.top_n < 1 or self.min_embedding_count < 0:
            raise ValueError(f"top_n must be >= 1 and min_embedding_count >= 0; got {self}")


def _valid_ranks(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slot holds a candidate, its 1-based rank among the row's candidates)."""
    valid = rows >= 0
    return valid, np.cumsum(valid, axis=1)


def fuse_rows(
    embedding: np.ndarray,
    cooccurrence: np.ndarray,
    popularity: np.ndarray,
    weight: float,
    settings: BlendSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted reciprocal-rank fusion of R items at once, with the sparse-item fallback to co-occurrence.

    `embedding` [R, a] and `cooccurrence` [R, b] are candidate rows (-1 padded), `popularity` [R] the items'
    engagement counts. Returns (candidates int32 [R, top_n], -1 padded; float64 scores), ranked by descending
    score, ties by candidate row (= id: the catalogue is sorted). Duplicate candidates of a row sum their
    shares with one sort of row * C + candidate keys. Where a source's share is 0 (weight 0 or 1) its
    candidates only fill the list after the other's, in their own order.
    """
    r, top_n = len(embedding), settings.top_n
    e_valid, e_rank = _valid_ranks(embedding)
    c_valid, c_rank = _valid_ranks(cooccurrence)
    if settings.min_embedding_count > 0:  # too sparse for a trustworthy embedding: co-occurrence only
        sparse = (np.asarray(popularity) < settings.min_embedding_count) & c_valid.any(axis=1)
        e_valid = e_valid & ~sparse[:, None]
    e_count = e_valid.sum(axis=1, keepdims=True)
    c_count = c_valid.sum(axis=1, keepdims=True)

    def shares(share: float, rank: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, counts toward the sum) of each slot: fused share, or a fill-in score below all fused."""
        if share > 0.0:
            return share / (settings.rrf_k + rank), np.ones(rank.shape, dtype=bool)
        return -rank / (count + 1.0), np.zeros(rank.shape, dtype=bool)

    e_score, e_fused = shares(weight, e_rank, e_count)
    c_score, c_fused = shares(1.0 - weight, c_rank, c_count)
    row = np.repeat(np.arange(r, dtype=np.int64)[:, None], embedding.shape[1] + cooccurrence.shape[1], axis=1)
    candidates = np.concatenate([embedding, cooccurrence], axis=1).astype(np.int64)
    valid = np.concatenate([e_valid, c_valid], axis=1)
    score = np.concatenate([e_score, c_score], axis=1)[valid]
    fused = np.concatenate([e_fused, c_fused], axis=1)[valid]
    row, candidates = row[valid], candidates[valid]
    width = int(candidates.max()) + 1 if len(candidates) else 1
    key = row * width + candidates
    order = np.argsort(key, kind="stable")  # embedding slots before co-occurrence ones of the same key
    key, score, fused = key[order], score[order], fused[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else np.empty(0, int)
    any_fused = np.logical_or.reduceat(fused, starts) if len(key) else np.empty(0, bool)
    fused_sum = np.add.reduceat(np.where(fused, score, 0.0), starts) if len(key) else np.empty(0)
    fill = np.maximum.reduceat(np.where(fused, -np.inf, score), starts) if len(key) else np.empty(0)
    total = np.where(any_fused, fused_sum, fill)
    group_row, group_candidate = key[starts] // width, key[starts] % width
    ranked = np.lexsort((group_candidate, -total, group_row))
    group_row, group_candidate, total = group_row[ranked], group_candidate[ranked], total[ranked]
    first = np.searchsorted(group_row, np.arange(r))
    slot = np.arange(len(group_row)) - first[group_row]
    keep = slot < top_n
    out_ids = np.full((r, top_n), -1, dtype=np.int32)
    out_scores = np.zeros((r, top_n), dtype=np.float64)
    out_ids[group_row[keep], slot[keep]] = group_candidate[keep]
    out_scores[group_row[keep], slot[keep]] = total[keep]
    return out_ids, out_scores


def sweep_target_ranks(
    embedding: np.ndarray,
    cooccurrence: np.ndarray,
    popularity: np.ndarray,
    which: np.ndarray,
    items: np.ndarray,
    targets: np.ndarray,
    weights: tuple[float, ...],
    settings: BlendSettings,
) -> list[np.ndarray]:
    """For each weight: each query's target rank in `fuse_rows`' answer, as metrics_lib.answer_ranks reads it
    (the query item removed, top_n deep; 0: a miss), without ranking any list.

    `embedding` / `cooccurrence` / `popularity` are the rows of R distinct query items; query i asks row
    which[i] (item items[i], target targets[i]). The (row, candidate) groups are formed once, as fuse_rows
    forms them (the same order, so the same float sums); per weight, a target's position is 1 + the groups of
    its row that fuse_rows puts before it (higher score, or equal score and smaller row), less one when the
    query item is among them. A weight grid then costs no sort per point (33 sorts of 200 slots per query
    item made the sweep most of the RelatedEvaluator's time at 2M events)."""
    r = len(embedding)
    e_valid, e_rank = _valid_ranks(embedding)
    c_valid, c_rank = _valid_ranks(cooccurrence)
    if settings.min_embedding_count > 0:
        sparse = (np.asarray(popularity) < settings.min_embedding_count) & c_valid.any(axis=1)
        e_valid = e_valid & ~sparse[:, None]
    e_count = e_valid.sum(axis=1, keepdims=True)
    c_count = c_valid.sum(axis=1, keepdims=True)
    row = np.repeat(np.arange(r, dtype=np.int64)[:, None], embedding.shape[1] + cooccurrence.shape[1], axis=1)
    candidates = np.concatenate([embedding, cooccurrence], axis=1).astype(np.int64)
    valid = np.concatenate([e_valid, c_valid], axis=1)
    from_embedding = np.concatenate(
        [np.ones(embedding.shape, dtype=bool), np.zeros(cooccurrence.shape, dtype=bool)], axis=1
    )[valid]
    rank = np.concatenate([e_rank, c_rank], axis=1)[valid]
    count = np.concatenate(
        [np.broadcast_to(e_count, embedding.shape), np.broadcast_to(c_count, cooccurrence.shape)], axis=1
    )[valid]
    row, candidates = row[valid], candidates[valid]
    width = int(candidates.max()) + 1 if len(candidates) else 1
    key = row * width + candidates
    order = np.argsort(key, kind="stable")
    key, from_embedding, rank, count = key[order], from_embedding[order], rank[order], count[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else np.empty(0, int)
    group_key = key[starts]
    group_row, group_candidate = group_key // width, group_key % width
    row_start = np.searchsorted(group_row, np.arange(r + 1))
    which = np.asarray(which, dtype=np.int64)
    items, targets = np.asarray(items, dtype=np.int64), np.asarray(targets, dtype=np.int64)

    def group_of(wanted: np.ndarray) -> np.ndarray:
        """The group of (which[i], wanted[i]), -1 where that row lacks it."""
        if not len(group_key):
            return np.full(len(wanted), -1, dtype=np.int64)
        code = which * width + np.clip(wanted, 0, width - 1)
        position = np.minimum(np.searchsorted(group_key, code), len(group_key) - 1)
        return np.where((group_key[position] == code) & (wanted >= 0) & (wanted < width), position, -1)

    target_group = np.where(targets != items, group_of(targets), -1)  # the query item is never an answer
    item_group = group_of(items)
    asked = np.flatnonzero(target_group >= 0)
    sizes = row_start[which[asked] + 1] - row_start[which[asked]]
    owner = np.repeat(asked, sizes)  # every group of each asked query's row
    member = (
        np.arange(len(owner))
        - np.repeat(np.cumsum(sizes) - sizes, sizes)
        + np.repeat(row_start[which[asked]], sizes)
    )

    def shares(share: float) -> tuple[np.ndarray, np.ndarray]:
        if share > 0.0:
            return share / (settings.rrf_k + rank), np.ones(len(rank), dtype=bool)
        return -rank / (count + 1.0), np.zeros(len(rank), dtype=bool)

    def before(total: np.ndarray, groups: np.ndarray, than: np.ndarray) -> np.ndarray:
        """Whether fuse_rows ranks group `groups` before group `than` (same row)."""
        return (total[groups] > total[than]) | (
            (total[groups] == total[than]) & (group_candidate[groups] < group_candidate[than])
        )

    results = []
    for weight in weights:
        e_score, e_fused = shares(weight)
        c_score, c_fused = shares(1.0 - weight)
        score = np.where(from_embedding, e_score, c_score)
        fused = np.where(from_embedding, e_fused, c_fused)
        total = np.empty(0)
        if len(key):
            any_fused = np.logical_or.reduceat(fused, starts)
            fused_sum = np.add.reduceat(np.where(fused, score, 0.0), starts)
            fill = np.maximum.reduceat(np.where(fused, -np.inf, score), starts)
            total = np.where(any_fused, fused_sum, fill)
        ahead = np.bincount(owner, weights=before(total, member, target_group[owner]), minlength=len(targets))
        position = ahead.astype(np.int64) + 1  # 1-based slot in fuse_rows' answer
        item_ahead = (item_group >= 0) & (target_group >= 0)
        item_ahead[item_ahead] = before(total, item_group[item_ahead], target_group[item_ahead])
        ranks = np.where((target_group >= 0) & (position <= settings.top_n), position - item_ahead, 0)
        results.append(ranks.astype(np.int64))
    return results
