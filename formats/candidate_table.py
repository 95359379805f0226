"""The on-disk format of per-item candidate lists (co-occurrence, blend): plain files, never pickles.

A table directory holds `items.txt` (one item id per line, row order), `neighbours.npy` (int32 [items, top_n],
row indices into items, -1 where a list is shorter), `scores.npy` (float32, same shape, descending per row),
`popularity.npy` (int64 engagement count per item, the bucket and fallback signal) and `table.json` (source
name, top_n, settings). NumPy files load with allow_pickle=False, so a table handed over by a user cannot run
code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

ITEMS_FILE = "items.txt"
NEIGHBOURS_FILE = "neighbours.npy"
SCORES_FILE = "scores.npy"
POPULARITY_FILE = "popularity.npy"
META_FILE = "table.json"


@dataclass
class CandidateTable:
    """Ranked candidates per item, with the item ids and popularity needed to answer and to evaluate."""

    items: list[str]
    neighbours: np.ndarray
    scores: np.ndarray
    popularity: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.items)
        if self.neighbours.shape != self.scores.shape or self.neighbours.ndim != 2:
            raise ValueError(
                f"neighbours {self.neighbours.shape} and scores {self.scores.shape} must be equal 2-D shapes"
            )
        if self.neighbours.shape[0] != n or self.popularity.shape != (n,):
            raise ValueError(
                f"{n} items but neighbours has {self.neighbours.shape[0]} rows and popularity "
                f"{self.popularity.shape}"
            )
        if self.neighbours.size and (self.neighbours.max() >= n or self.neighbours.min() < -1):
            raise ValueError(f"neighbour indices must lie in [-1, {n}); the table is corrupt")
        self._row = {item: row for row, item in enumerate(self.items)}

    @property
    def top_n(self) -> int:
        return int(self.neighbours.shape[1])

    def row(self, item: str) -> int | None:
        return self._row.get(item)

    def candidates(self, item: str, k: int) -> list[tuple[str, float]] | None:
        """Up to k (item, score) pairs, best first; None for an item the table does not know."""
        row = self._row.get(item)
        if row is None:
            return None
        ids, scores = self.neighbours[row, :k], self.scores[row, :k]
        return [(self.items[i], float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]

    def related(self, item_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, float]] | None]:
        """Same shape as `RelatedItemsSearcher.related`, so callers can switch sources."""
        return {item: self.candidates(item, k) for item in item_ids}

    def ranked_ids(self, item_ids: Sequence[str], k: int) -> list[list[str]]:
        """Ranked ids only, [] for unknown items: the form the metrics take."""
        return [[c for c, _ in (self.candidates(item, k) or [])] for item in item_ids]


def from_lists(
    lists: Mapping[str, Sequence[tuple[str, float]]],
    popularity: Mapping[str, int],
    top_n: int,
    meta: dict | None = None,
) -> CandidateTable:
    """Builds a table from item -> ranked (candidate, score) lists; every item named anywhere gets a row."""
    items = sorted(set(popularity) | set(lists) | {c for ranked in lists.values() for c, _ in ranked})
    row = {item: i for i, item in enumerate(items)}
    neighbours = np.full((len(items), top_n), -1, dtype=np.int32)
    scores = np.zeros((len(items), top_n), dtype=np.float32)
    for item, ranked in lists.items():
        for position, (candidate, score) in enumerate(ranked[:top_n]):
            neighbours[row[item], position] = row[candidate]
            scores[row[item], position] = score
    counts = np.array([int(popularity.get(item, 0)) for item in items], dtype=np.int64)
    return CandidateTable(items, neighbours, scores, counts, dict(meta or {}, top_n=top_n))


def from_arrays(
    items: Sequence[str],
    neighbours: np.ndarray,
    scores: np.ndarray,
    popularity: np.ndarray,
    meta: dict | None = None,
) -> CandidateTable:
    """A table straight from arrays already over `items` (row order, -1 padded): no per-item Python lists,
    which is what lets a million-item table be built in seconds."""
    return CandidateTable(
        list(items),
        np.asarray(neighbours, dtype=np.int32),
        np.asarray(scores, dtype=np.float32),
        np.asarray(popularity, dtype=np.int64),
        dict(meta or {}, top_n=int(np.shape(neighbours)[1])),
    )


def save_table(table: CandidateTable, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    for item in table.items:
        if not item or "\n" in item or "\r" in item:
            raise ValueError(f"item id {item!r} cannot be stored one per line")
    with open(os.path.join(directory, ITEMS_FILE), "w", encoding="utf-8") as f:
        f.writelines(item + "\n" for item in table.items)
    np.save(os.path.join(directory, NEIGHBOURS_FILE), table.neighbours.astype(np.int32))
    np.save(os.path.join(directory, SCORES_FILE), table.scores.astype(np.float32))
    np.save(os.path.join(directory, POPULARITY_FILE), table.popularity.astype(np.int64))
    meta = dict(table.meta, num_items=len(table.items), top_n=table.top_n)
    with open(os.path.join(directory, META_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return directory


def load_table(directory: str) -> CandidateTable:
    """Loads and checks a table; errors name the directory and the file that is wrong."""
    missing = [
        name
        for name in (ITEMS_FILE, NEIGHBOURS_FILE, SCORES_FILE, POPULARITY_FILE, META_FILE)
        if not os.path.isfile(os.path.join(directory, name))
    ]
    if missing:
        raise FileNotFoundError(f"{directory} is not a candidate table: missing {', '.join(missing)}")
    with open(os.path.join(directory, ITEMS_FILE), encoding="utf-8") as f:
        items = [line.rstrip("\n") for line in f]
    with open(os.path.join(directory, META_FILE), encoding="utf-8") as f:
        meta = json.load(f)
    try:
        table = CandidateTable(
            items,
            np.load(os.path.join(directory, NEIGHBOURS_FILE), allow_pickle=False),
            np.load(os.path.join(directory, SCORES_FILE), allow_pickle=False),
            np.load(os.path.join(directory, POPULARITY_FILE), allow_pickle=False),
            meta,
        )
    except ValueError as error:
        raise ValueError(f"{directory}: {error}") from error
    return table
