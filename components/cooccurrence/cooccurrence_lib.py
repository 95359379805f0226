"""Co-occurrence candidates (Pinterest's "board co-occurrence" analogue), as pure functions.

Two items co-occur when they form a training pair: inside a user's session, within the sliding window.
Counts are symmetric. A candidate's score is its co-occurrence count damped by its own popularity,
count / degree^popularity_exponent (degree: all co-occurrences of the candidate). Exponent 0 keeps raw counts
(favours popular items, which the next engagement often is); 0.5 is close to cosine; 1 is close to PMI
(favours rare items). The default, 0.25, won on the validation queries (docs/BENCHMARKS.md): raw counts
over-rank popular items, cosine starts to over-rank rare ones.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np


@dataclass(frozen=True)
class CooccurrenceSettings:
    """How candidates are scored and how many are kept per item."""

    top_n: int = 100
    popularity_exponent: float = (
        0.25  # best on validation of 0, .25, .5, .75, 1 (bench/sweep_cooccurrence.py)
    )
    min_count: int = 1  # pairs seen fewer times are noise, not candidates

    def __post_init__(self) -> None:
        if not isinstance(self.top_n, int) or self.top_n < 1:
            raise ValueError(f"top_n={self.top_n!r} is invalid: expected an integer >= 1")
        if not 0.0 <= self.popularity_exponent <= 1.0:
            raise ValueError(f"popularity_exponent={self.popularity_exponent!r} is invalid: expected [0, 1]")
        if not isinstance(self.min_count, int) or self.min_count < 1:
            raise ValueError(f"min_count={self.min_count!r} is invalid: expected an integer >= 1")


def both_directions(item: str, label: str) -> Iterator[tuple[str, str]]:
    """A pair counts for both items; an item never co-occurs with itself."""
    if item != label:
        yield item, label
        yield label, item


def association(count: int, candidate_degree: int, exponent: float) -> float:
    return count / math.pow(candidate_degree, exponent) if exponent else float(count)


def top_candidates(
    counts: Iterable[tuple[str, int]], degrees: Mapping[str, int], settings: CooccurrenceSettings
) -> list[tuple[str, float]]:
    """One item's (candidate, count) pairs -> its best top_n (candidate, score), ties broken by id."""
    scored = [
        (candidate, association(count, degrees[candidate], settings.popularity_exponent))
        for candidate, count in counts
        if count >= settings.min_count
    ]
    scored.sort(key=lambda cs: (-cs[1], cs[0]))
    return scored[: settings.top_n]


def cooccurrence_lists(
    pairs: Iterable[tuple[str, str]], settings: CooccurrenceSettings
) -> tuple[dict[str, list[tuple[str, float]]], Counter]:
    """In memory: (item -> candidates, item -> degree). The Beam executor must match it."""
    counts: Counter = Counter()
    for item, label in pairs:
        counts.update(both_directions(item, label))
    degrees: Counter = Counter()
    per_item: dict[str, list[tuple[str, int]]] = {}
    for (item, candidate), count in counts.items():
        degrees[item] += count
        per_item.setdefault(item, []).append((candidate, count))
    lists = {item: top_candidates(c, degrees, settings) for item, c in per_item.items()}
    return lists, degrees


# ---------------------------------------------------------------------------------------------------------
# The same algorithm on integer arrays, for logs of tens of millions of pairs: items are rows of a sorted
# vocabulary, a directed pair (item, candidate) is the int64 key item * vocabulary_size + candidate.


def directed_pair_counts(
    items: np.ndarray, labels: np.ndarray, vocabulary_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vocabulary rows of a chunk of pairs -> (sorted unique directed keys, their counts), both directions."""
    different = items != labels
    items, labels = items[different].astype(np.int64), labels[different].astype(np.int64)
    keys = np.concatenate([items * vocabulary_size + labels, labels * vocabulary_size + items])
    return np.unique(keys, return_counts=True)


def merge_pair_counts(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sums the counts of equal keys over chunks."""
    parts = list(parts)
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = np.concatenate([k for k, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)


def add_counts(
    parts: list[tuple[np.ndarray, np.ndarray]], part: tuple[np.ndarray, np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Adds one chunk's (keys, counts) to a list of parts, merging the parts whenever the newer ones hold
    as many entries as the oldest (merged) one: memory stays within about twice the distinct keys seen,
    not one entry per directed pair of every chunk, at O(log chunks) merges per entry."""
    parts = [*parts, part]
    if len(parts) > 1 and sum(len(k) for k, _ in parts[1:]) >= len(parts[0][0]):
        parts = [merge_pair_counts(parts)]
    return parts


def unique_union(arrays: list[np.ndarray], array: np.ndarray) -> list[np.ndarray]:
    """`add_counts` for a vocabulary: sorted unique arrays, merged (np.union1d) as the newer ones grow."""
    arrays = [*arrays, np.unique(array)]
    if len(arrays) > 1 and sum(len(a) for a in arrays[1:]) >= len(arrays[0]):
        arrays = [np.unique(np.concatenate(arrays))]
    return arrays


def pair_degrees(items: np.ndarray, labels: np.ndarray, vocabulary_size: int) -> np.ndarray:
    """Co-occurrences per vocabulary row in a chunk (what `cooccurrence_lists` calls the degree)."""
    different = items != labels
    return np.bincount(items[different], minlength=vocabulary_size) + np.bincount(
        labels[different], minlength=vocabulary_size
    )


class RankingSettings(Protocol):
    """What ranking reads: CooccurrenceSettings, and the board source's BoardSettings."""

    top_n: int
    popularity_exponent: float
    min_count: float


class TopRows(NamedTuple):
    rows: np.ndarray  # item row
    ranks: np.ndarray  # 0-based position in that item's list
    candidates: np.ndarray  # candidate row
    scores: np.ndarray  # association, float64


def top_candidate_rows(
    keys: np.ndarray,
    counts: np.ndarray,
    degrees: np.ndarray,
    vocabulary_size: int,
    settings: RankingSettings,
) -> TopRows:
    """`top_candidates` for every item of `keys` at once; ties go to the smaller row (the smaller id)."""
    keep = counts >= settings.min_count
    keys, counts = keys[keep], counts[keep]
    rows, candidates = keys // vocabulary_size, keys % vocabulary_size
    scores = counts.astype(np.float64)
    if settings.popularity_exponent:
        scores = scores / np.power(degrees[candidates].astype(np.float64), settings.popularity_exponent)
    order = np.lexsort((candidates, -scores, rows))
    rows, candidates, scores = rows[order], candidates[order], scores[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, len(rows)])
    ranks = np.arange(len(rows)) - np.repeat(starts, lengths)
    top = ranks < settings.top_n
    return TopRows(rows[top], ranks[top], candidates[top], scores[top])
