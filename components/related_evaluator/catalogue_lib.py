"""One integer index over the evaluated catalogue, and candidate sources / queries as arrays over it.

Every item the evaluator handles is a row 0..N-1 of a sorted catalogue (the union of the index's and the
co-occurrence table's items): sources are padded int32 [N, depth] candidate rows (-1 = none) with float32
scores, queries are (item row, target row) int arrays (-1 for ids outside the catalogue, which never hit).
Sorted ids make row order equal to string order, so "ties broken by id" is "ties broken by row". At a million
items this costs a few hundred MB where Python lists of (str, float) tuples cost tens of GB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

NONE = -1  # the row of an id outside the catalogue, and the padding of candidate rows


@dataclass(frozen=True)
class Catalogue:
    """Sorted unique item ids; an item's row is its position."""

    ids: np.ndarray  # str ('U') [N], sorted, unique

    def __post_init__(self) -> None:
        if self.ids.ndim != 1 or (len(self.ids) > 1 and not (self.ids[1:] > self.ids[:-1]).all()):
            raise ValueError("catalogue ids must be a 1-D array of sorted, unique ids")

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """int64 row of each id, NONE for ids outside the catalogue (vectorised: a binary search)."""
        wanted = np.asarray(ids, dtype=str) if len(ids) else np.empty(0, dtype=str)
        if not len(self.ids):
            return np.full(len(wanted), NONE, dtype=np.int64)
        position = np.searchsorted(self.ids, wanted)
        found = position < len(self.ids)
        found[found] = self.ids[position[found]] == wanted[found]
        return np.where(found, position, NONE).astype(np.int64)

    def names(self, rows: Iterable[int]) -> list[str]:
        return [str(self.ids[row]) for row in rows]


def catalogue_of(*id_groups: Iterable[str]) -> Catalogue:
    """The sorted union of the given ids."""
    ids: set[str] = set()
    for group in id_groups:
        ids.update(group)
    return Catalogue(np.array(sorted(ids), dtype=str) if ids else np.empty(0, dtype="U1"))


@dataclass(frozen=True)
class Source:
    """A candidate source over the catalogue: row i holds item i's candidates, best first, -1 padded."""

    ids: np.ndarray  # int32 [N, depth]
    scores: np.ndarray  # float32 [N, depth] (0 where ids is -1)

    def __post_init__(self) -> None:
        if self.ids.ndim != 2 or self.ids.shape != self.scores.shape:
            raise ValueError(f"ids {self.ids.shape} and scores {self.scores.shape} must be equal 2-D shapes")

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, items: np.ndarray) -> np.ndarray:
        """Candidate rows of the given items; all -1 for NONE items."""
        items = np.asarray(items, dtype=np.int64)
        out = self.ids[np.maximum(items, 0)]
        out[items < 0] = NONE
        return out

    def ranked(self, catalogue: Catalogue, item: int, k: int) -> list[list]:
        """[[candidate id, score], ...] of one item: the report's examples."""
        ids, scores = self.ids[item, :k], self.scores[item, :k]
        return [[str(catalogue.ids[c]), float(s)] for c, s in zip(ids, scores, strict=True) if c >= 0]


def empty_source(num_items: int, depth: int) -> Source:
    return Source(np.full((num_items, depth), NONE, np.int32), np.zeros((num_items, depth), np.float32))


def source_from_table(table, catalogue: Catalogue, depth: int) -> Source:
    """A CandidateTable (its own row order) re-indexed onto the catalogue, cut or padded to `depth`."""
    source = empty_source(len(catalogue), depth)
    if not len(table.items):
        return source
    row_of = catalogue.rows(table.items)
    if (row_of < 0).any():
        raise ValueError("the candidate table has items outside the catalogue: build it from the table's ids")
    width = min(depth, table.top_n)
    neighbours = table.neighbours[:, :width]
    source.ids[row_of, :width] = np.where(neighbours >= 0, row_of[np.maximum(neighbours, 0)], NONE)
    source.scores[row_of, :width] = np.where(neighbours >= 0, table.scores[:, :width], 0.0)
    return source


def _index_rows_of(searcher, catalogue: Catalogue) -> np.ndarray:
    """Each index row's catalogue row; every indexed id must be in the catalogue."""
    row_of = catalogue.rows(list(searcher.item_ids))
    if (row_of < 0).any():
        raise ValueError("the index has items outside the catalogue: build it from the index's ids")
    return row_of


def _searched(searcher, row_of: np.ndarray, query: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(int32 [n, depth] catalogue rows, float32 scores) of index rows `query`, as the index answers them
    (formats.index_searcher's `neighbour_rows`, ScaNN's threads on): index rows map to catalogue rows through
    one array, with no id string per neighbour."""
    ids = np.full((len(query), depth), NONE, np.int32)
    scores = np.zeros((len(query), depth), np.float32)
    k = min(depth, searcher.max_k)
    if k < 1 or not len(query):
        return ids, scores
    neighbours, similarities = searcher.neighbour_rows(query, k, parallel=True)
    found = neighbours >= 0
    ids[:, :k] = np.where(found, row_of[np.maximum(neighbours, 0)], NONE)
    scores[:, :k] = np.where(found, similarities, 0.0)
    return ids, scores


def source_from_index(searcher, catalogue: Catalogue, depth: int, chunk: int = 4096) -> Source:
    """Every indexed item's neighbours, exactly as the index answers them, as catalogue rows."""
    source = empty_source(len(catalogue), depth)
    row_of = _index_rows_of(searcher, catalogue)
    for start in range(0, len(row_of), chunk):
        query = np.arange(start, min(start + chunk, len(row_of)))
        source.ids[row_of[query]], source.scores[row_of[query]] = _searched(searcher, row_of, query, depth)
    return source


class SearchedSource:
    """`source_from_index`, searched only for the rows read (`rows`, `ranked`), each row once: a source that
    is only measured (on the held-out queries, the stability sample and the report's examples) costs those
    searches, not the catalogue's (pin2vec_similar: ~85k of 772k rows at 20M events). Reading `ids` or
    `scores` searches every row not searched yet: the whole Source, as source_from_index gives it."""

    def __init__(self, searcher, catalogue: Catalogue, depth: int, chunk: int = 4096):
        self._searcher, self._depth, self._chunk = searcher, depth, chunk
        self._row_of = _index_rows_of(searcher, catalogue)
        self._index_row = np.full(len(catalogue), NONE, np.int64)  # catalogue row -> index row
        self._index_row[self._row_of] = np.arange(len(self._row_of))
        self._slot = np.full(len(catalogue), NONE, np.int64)  # catalogue row -> row of the arrays below
        self._ids = np.empty((0, depth), np.int32)
        self._scores = np.empty((0, depth), np.float32)

    def __len__(self) -> int:
        return len(self._slot)

    @property
    def searched(self) -> int:
        """Catalogue rows searched so far (or found outside the index)."""
        return len(self._ids)

    def _fill(self, items: np.ndarray) -> None:
        items = np.unique(np.asarray(items, dtype=np.int64))
        missing = items[(items >= 0) & (self._slot[np.maximum(items, 0)] < 0)]
        if not len(missing):
            return
        ids = np.full((len(missing), self._depth), NONE, np.int32)
        scores = np.zeros((len(missing), self._depth), np.float32)
        indexed = np.flatnonzero(self._index_row[missing] >= 0)
        for start in range(0, len(indexed), self._chunk):
            part = indexed[start : start + self._chunk]
            query = self._index_row[missing[part]]
            ids[part], scores[part] = _searched(self._searcher, self._row_of, query, self._depth)
        self._slot[missing] = len(self._ids) + np.arange(len(missing))
        self._ids = np.concatenate([self._ids, ids])
        self._scores = np.concatenate([self._scores, scores])

    def rows(self, items: np.ndarray) -> np.ndarray:
        """Source.rows: candidate rows of the given items; all -1 for NONE items."""
        items = np.asarray(items, dtype=np.int64)
        self._fill(items)
        out = self._ids[np.maximum(self._slot[np.maximum(items, 0)], 0)] if len(self._ids) else None
        if out is None:
            return np.full((len(items), self._depth), NONE, np.int32)
        out[items < 0] = NONE
        return out

    def ranked(self, catalogue: Catalogue, item: int, k: int) -> list[list]:
        self._fill(np.array([item]))
        slot = self._slot[item]
        ids, scores = self._ids[slot, :k], self._scores[slot, :k]
        return [[str(catalogue.ids[c]), float(s)] for c, s in zip(ids, scores, strict=True) if c >= 0]

    @property
    def ids(self) -> np.ndarray:
        self._fill(np.arange(len(self)))
        return self._ids[self._slot]

    @property
    def scores(self) -> np.ndarray:
        self._fill(np.arange(len(self)))
        return self._scores[self._slot]


def source_from_lists(
    lists: Mapping[str, Sequence[tuple[str, float]] | None], catalogue: Catalogue, depth: int
) -> Source:
    """item -> ranked [(candidate, score)] (small inputs: tests, tools) as a Source; every id must be in the
    catalogue."""
    source = empty_source(len(catalogue), depth)
    for item, ranked in lists.items():
        ranked = list(ranked or [])[:depth]
        if not ranked:
            continue
        row = catalogue.rows([item])[0]
        candidates = catalogue.rows([c for c, _ in ranked])
        if row < 0 or (candidates < 0).any():
            raise ValueError(f"the lists of {item!r} name ids outside the catalogue")
        source.ids[row, : len(ranked)] = candidates
        source.scores[row, : len(ranked)] = [s for _, s in ranked]
    return source


@dataclass(frozen=True)
class Queries:
    """Held-out (item, next item) pairs as catalogue rows (NONE: outside the catalogue)."""

    items: np.ndarray  # int64 [Q]
    targets: np.ndarray  # int64 [Q]

    def __len__(self) -> int:
        return len(self.items)

    def take(self, selected: np.ndarray) -> Queries:
        return Queries(self.items[selected], self.targets[selected])


def queries_from(pairs: Iterable[tuple[str, str]], catalogue: Catalogue) -> Queries:
    """(item, target) id pairs -> Queries, sorted by (item row, target row) for a stable order."""
    pairs = list(pairs)
    items = catalogue.rows([p[0] for p in pairs])
    targets = catalogue.rows([p[1] for p in pairs])
    order = np.lexsort((targets, items))
    return Queries(items[order], targets[order])


def no_queries() -> Queries:
    return Queries(np.empty(0, np.int64), np.empty(0, np.int64))
