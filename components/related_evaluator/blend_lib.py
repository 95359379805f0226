"""Blending Pin2Vec neighbours with co-occurrence candidates, as pure functions.

Weighted reciprocal-rank fusion: a candidate scores weight / (rrf_k + its Pin2Vec rank) plus
(1 - weight) / (rrf_k + its co-occurrence rank), a missing rank adding nothing. Ranks, not raw scores, are
fused because cosine similarities and co-occurrence counts live on unrelated scales. Where an item is too
sparse for a trustworthy embedding only co-occurrence speaks; where co-occurrence knows too few candidates,
the embedding neighbours fill the list (fusion does that by itself: they are the only ones left).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Ranked = Sequence[tuple[str, float]]


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


def fuse(
    embedding: Ranked, cooccurrence: Ranked, weight: float, rrf_k: float, top_n: int
) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion of two ranked lists; ties broken by id for determinism."""
    scores: dict[str, float] = {}
    for share, ranked in ((weight, embedding), (1.0 - weight, cooccurrence)):
        if share <= 0.0:
            continue
        for rank, (candidate, _) in enumerate(ranked, 1):
            scores[candidate] = scores.get(candidate, 0.0) + share / (rrf_k + rank)
    if weight <= 0.0:  # co-occurrence first, then embedding neighbours fill what it does not know
        for rank, (candidate, _) in enumerate(embedding, 1):
            scores.setdefault(candidate, -rank / (len(embedding) + 1))
    if weight >= 1.0:
        for rank, (candidate, _) in enumerate(cooccurrence, 1):
            scores.setdefault(candidate, -rank / (len(cooccurrence) + 1))
    fused = sorted(scores.items(), key=lambda cs: (-cs[1], cs[0]))
    return fused[:top_n]


def blend_item(
    embedding: Ranked | None,
    cooccurrence: Ranked | None,
    popularity: int,
    weight: float,
    settings: BlendSettings,
) -> list[tuple[str, float]]:
    """One item's blended list, with the sparse-item fallback to co-occurrence."""
    if embedding and popularity < settings.min_embedding_count and cooccurrence:
        embedding = None
    return fuse(embedding or [], cooccurrence or [], weight, settings.rrf_k, settings.top_n)
