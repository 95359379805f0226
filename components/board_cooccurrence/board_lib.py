"""Board co-occurrence (the Pin2Vec post's older candidate source), as pure functions.

Two items co-occur when a user saved both to the same board (collection). A board of n distinct items gives
each of its n(n-1) directed pairs the weight 1 / (n - 1)^board_size_exponent: with exponent 1, every save
hands out one unit among its board-mates, so a catch-all board of 5,000 pins counts no more per item than a
focused one (large boards are coarse: they span broad topics). A board longer than `max_board_size` is cut
into consecutive runs of saves (by save time), which bounds the quadratic cost and follows a board whose topic
drifts. Candidates are then ranked as session co-occurrence ranks them (cooccurrence_lib.top_candidate_rows):
weight damped by the candidate's total weight^popularity_exponent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from components.cooccurrence import cooccurrence_lib


@dataclass(frozen=True)
class BoardSettings:
    """How board co-occurrences are weighted, ranked and kept. Defaults: bench/sweep_boards.py on the planted
    boards world, validation only (docs/BENCHMARKS.md, "Board co-occurrence weighting")."""

    top_n: int = 100
    # Pair weight 1 / (n - 1)^this for a board (run) of n distinct items: large boards are down-weighted. Of
    # the exponents that do (0.5, 1), 0.5 is as good on validation. Not down-weighting at all (0) did better
    # there, but that world has no catch-all boards of thousands of items, the case this guards against.
    board_size_exponent: float = 0.5
    popularity_exponent: float = 0.0  # weight / candidate_degree^this; 0 (raw weights) won at every exponent
    max_board_size: int = 500  # longer boards are cut into runs of this many saves, in save order
    min_count: float = 0.0  # pairs of smaller total weight are dropped
    max_bad_share: float = 0.01  # fail the run when more than this share of collection rows is malformed

    def __post_init__(self) -> None:
        if isinstance(self.top_n, bool) or not isinstance(self.top_n, int) or self.top_n < 1:
            raise ValueError(f"BoardSettings.top_n must be an integer >= 1; got {self.top_n!r}")
        if isinstance(self.max_board_size, bool) or not isinstance(self.max_board_size, int):
            raise ValueError(f"BoardSettings.max_board_size must be an integer; got {self.max_board_size!r}")
        if self.max_board_size < 2:
            raise ValueError(f"BoardSettings.max_board_size must be >= 2; got {self.max_board_size}")
        for name in ("board_size_exponent", "popularity_exponent", "min_count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"BoardSettings.{name} must be a number >= 0; got {value!r}")
        if not 0.0 <= self.max_bad_share <= 1.0:
            raise ValueError(f"BoardSettings.max_bad_share must be in [0, 1]; got {self.max_bad_share!r}")


def board_runs(saves: Iterable[tuple[str, int]], max_board_size: int) -> list[list[str]]:
    """One board's (item, time) saves -> its runs of distinct items in save order (ties by item id), each at
    most `max_board_size` long; an item saved twice counts at its first save."""
    seen: set[str] = set()
    ordered = []
    for item, _ in sorted(saves, key=lambda save: (save[1], save[0])):
        if item not in seen:
            seen.add(item)
            ordered.append(item)
    return [ordered[start : start + max_board_size] for start in range(0, len(ordered), max_board_size)]


def run_pair_weights(
    rows: np.ndarray, vocabulary_size: int, exponent: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vocabulary rows of one run of distinct items -> (directed pair keys item * V + candidate, weights)."""
    rows = np.asarray(rows, dtype=np.int64)
    n = len(rows)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    first, second = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    different = first != second
    keys = rows[first[different]] * vocabulary_size + rows[second[different]]
    return keys, np.full(len(keys), 1.0 / (n - 1) ** exponent)


def merge_weights(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sums the weights of equal keys over parts: (sorted unique keys, float64 weights)."""
    parts = list(parts)
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    keys = np.concatenate([k for k, _ in parts])
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=np.concatenate([w for _, w in parts]), minlength=len(unique))


def degrees(keys: np.ndarray, weights: np.ndarray, vocabulary_size: int) -> np.ndarray:
    """Total pair weight per vocabulary row (pairs are symmetric, so item side and candidate side agree)."""
    return np.bincount(keys // vocabulary_size, weights=weights, minlength=vocabulary_size)


def board_lists(
    boards: Mapping[str, Sequence[tuple[str, int]]], settings: BoardSettings
) -> dict[str, list[tuple[str, float]]]:
    """In memory, from board -> (item, time) saves: item -> its ranked (candidate, score). The Beam executor
    computes the same thing shard by shard; this is its reference and the tools' entry point."""
    vocabulary = sorted({item for saves in boards.values() for item, _ in saves})
    row_of = {item: row for row, item in enumerate(vocabulary)}
    parts = [
        run_pair_weights(np.array([row_of[i] for i in run]), len(vocabulary), settings.board_size_exponent)
        for saves in boards.values()
        for run in board_runs(saves, settings.max_board_size)
    ]
    keys, weights = merge_weights(parts)
    top = cooccurrence_lib.top_candidate_rows(
        keys, weights, degrees(keys, weights, len(vocabulary)), len(vocabulary), settings
    )
    lists: dict[str, list[tuple[str, float]]] = {}
    for row, candidate, score in zip(top.rows, top.candidates, top.scores, strict=True):
        lists.setdefault(vocabulary[row], []).append((vocabulary[candidate], float(score)))
    return lists
