"""Neighbour stability: how much of each item's related list survives from the version being served to the
candidate. Users notice a list that reshuffles every day even when its quality is unchanged; HR@K does not.

overlap@k of one item, A and B its first k related items in the served and in the candidate version (the
item itself and padding removed): |A ∩ B| / min(k, |A|, |B|). With two full lists that is |A ∩ B| / k; a
short list is judged on what it shows (a list of 3 whose 3 items all survive, among 10 new ones, is stable).
An item with an empty list on either side has nothing to compare: it is counted apart (`empty_lists`), not
averaged. Only items present in both versions are compared; the figure is their mean overlap, overall and
per popularity bucket of the candidate (metrics_lib's head / torso / tail). Above MAX_ITEMS items in both, a
seeded uniform sample of MAX_ITEMS is compared (`sampled`).

The served version is what serving answers from now: per source, the newest committed, intact version not
after a rollback pin (formats/index_searcher.latest_version_dir). The headline compares what the default model
answers now (the served default source) with what it would answer after this push (the candidate's best
source): the lists users of `related` see change. `from_served_default` holds that comparison for every
candidate source, so the pusher can judge whichever source it ends up serving (co-occurrence when the model
is kept back).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from components.related_evaluator import catalogue_lib, metrics_lib
from components.related_evaluator.catalogue_lib import Catalogue, Source
from formats import candidate_table, evaluation_result, index_files, push_records, serving_layout
from formats.index_searcher import RelatedItemsSearcher, latest_version_dir

K = 10
MAX_ITEMS = 50_000  # items compared per source; a seeded sample beyond (two ScaNN searches of k=10 each)
SEED = 0
SEARCH_CHUNK = 4096
DEFINITION = (
    "overlap@10 = |served top 10 ∩ candidate top 10| / min(10, |served|, |candidate|), the item itself "
    "excluded, averaged over items present in both versions whose lists are not empty"
)


def overlap_at_k(served: Sequence, candidate: Sequence, k: int = K) -> float | None:
    """One item's overlap@k between two ranked lists (first k entries of each); None when either is empty."""
    a, b = list(served)[:k], list(candidate)[:k]
    shorter = min(len(a), len(b))
    if shorter == 0:
        return None
    return len(set(a) & set(b)) / shorter


def clean_rows(rows: np.ndarray, items: np.ndarray, k: int = K) -> np.ndarray:
    """[n, k] rows with each row's own item and the padding (-1) removed, the rest moved left in order and cut
    to k, -1 padded. Other negative entries (ServedLists.OUTSIDE) are kept: they are items."""
    rows = np.asarray(rows, dtype=np.int64).reshape(len(items), -1)
    keep = (rows != catalogue_lib.NONE) & (rows != np.asarray(items, dtype=np.int64)[:, None])
    position = np.cumsum(keep, axis=1) - 1
    keep &= position < k
    out = np.full((len(rows), k), catalogue_lib.NONE, dtype=np.int64)
    which, slot = np.nonzero(keep)
    out[which, position[which, slot]] = rows[which, slot]
    return out


def overlap_rows(served: np.ndarray, candidate: np.ndarray, k: int = K) -> np.ndarray:
    """`overlap_at_k` of every row pair of two [n, >=k] arrays already cleaned (clean_rows: -1 padded,
    distinct entries; other negative entries are items outside the catalogue, counted in a list's length but
    never shared); NaN where either row is empty."""
    a, b = np.asarray(served)[:, :k], np.asarray(candidate)[:, :k]
    shared = ((a[:, :, None] == b[:, None, :]) & (a >= 0)[:, :, None]).any(axis=2).sum(axis=1)
    shorter = np.minimum((a != catalogue_lib.NONE).sum(axis=1), (b != catalogue_lib.NONE).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(shorter > 0, shared / np.maximum(shorter, 1), np.nan)


def summarize(overlaps: np.ndarray, buckets: np.ndarray) -> dict:
    """Mean overlap of the comparable items (not NaN), overall and per bucket index (into BUCKETS)."""
    overlaps, buckets = np.asarray(overlaps, dtype=np.float64), np.asarray(buckets)
    comparable = ~np.isnan(overlaps)

    def mean(selected: np.ndarray) -> dict:
        chosen = overlaps[selected & comparable]
        return {"overlap_at_10": float(chosen.mean()) if len(chosen) else None, "items": len(chosen)}

    return {
        **mean(np.ones(len(overlaps), dtype=bool)),
        "empty_lists": int((~comparable).sum()),
        "buckets": {name: mean(buckets == b) for b, name in enumerate(metrics_lib.BUCKETS)},
    }


def sample_rows(rows: np.ndarray, max_items: int = MAX_ITEMS, seed: int = SEED) -> np.ndarray:
    """All `rows` (sorted) up to max_items, else a seeded uniform sample of max_items of them, sorted."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if len(rows) <= max_items:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_items, replace=False))


class ServedLists:
    """One served version of a source: which catalogue items it knows, and their first k related items as
    catalogue rows (ids outside the catalogue become -2: they count in the list's length, never as shared)."""

    OUTSIDE = -2

    def __init__(self, directory: str, source: str, catalogue: Catalogue, k: int = K):
        self.directory, self.k, self.catalogue = directory, k, catalogue
        self._searcher, self._table = None, None
        if source in serving_layout.INDEX_SOURCES:
            self._searcher = RelatedItemsSearcher(directory, max_k=k)
            items = list(self._searcher.item_ids)
        else:
            self._table = candidate_table.load_table(directory)
            items = self._table.items
        self.item_rows = catalogue.rows(items)  # -1: an item the candidate does not know

    def known(self) -> np.ndarray:
        """Catalogue rows of the items this version knows (and the candidate too), sorted."""
        return np.sort(self.item_rows[self.item_rows >= 0])

    def rows(self, items: np.ndarray) -> np.ndarray:
        """[n, k] related items of catalogue rows `items` (each known here), -1 padded, OUTSIDE for ids the
        candidate's catalogue lacks."""
        position = np.full(len(self.catalogue), -1, dtype=np.int64)
        position[self.item_rows[self.item_rows >= 0]] = np.flatnonzero(self.item_rows >= 0)
        mine = position[np.asarray(items, dtype=np.int64)]
        if (mine < 0).any():
            raise ValueError(f"{self.directory} does not know every item asked for")
        if self._table is not None:
            neighbours = self._table.neighbours[mine, : self.k].astype(np.int64)
            mapped = np.where(neighbours >= 0, self.item_rows[np.maximum(neighbours, 0)], catalogue_lib.NONE)
            return np.where((neighbours >= 0) & (mapped < 0), self.OUTSIDE, mapped)
        out = np.full((len(mine), self.k), catalogue_lib.NONE, dtype=np.int64)
        k = min(self.k, self._searcher.max_k)
        if k < 1:
            return out
        for start in range(0, len(mine), SEARCH_CHUNK):  # the served index's rows are its item positions
            neighbours, _ = self._searcher.neighbour_rows(
                mine[start : start + SEARCH_CHUNK], k, parallel=True
            )
            rows = self.item_rows[np.maximum(neighbours, 0)]
            out[start : start + len(neighbours), :k] = np.where(
                neighbours < 0, catalogue_lib.NONE, np.where(rows < 0, self.OUTSIDE, rows)
            )
        return out


def compare(
    served: ServedLists, candidate: Source, buckets: np.ndarray, max_items: int = MAX_ITEMS, seed: int = SEED
) -> dict:
    """overlap@k of one served source against one candidate source over the items both know."""
    in_both = served.known()
    items = sample_rows(in_both, max_items, seed)
    served_rows = clean_rows(served.rows(items), items, served.k)
    candidate_rows = clean_rows(candidate.rows(items), items, served.k)
    overlaps = overlap_rows(served_rows, candidate_rows, served.k)
    return {
        **summarize(overlaps, buckets[items]),
        "items_in_both": len(in_both),
        "sampled": bool(len(items) < len(in_both)),
    }


def served_directory(serving_dir: str, source: str) -> str | None:
    """The version directory of `source` that serving answers from now (pins and commits respected)."""
    base = os.path.join(serving_dir, serving_layout.SOURCE_MODELS[source])
    marker = (
        index_files.METADATA_FILE if source in serving_layout.INDEX_SOURCES else candidate_table.META_FILE
    )
    return latest_version_dir(base, marker)


def served_default_source(serving_dir: str) -> str | None:
    """The source the served default model answers from: the served evaluation version's
    served_sources.json (what its push chose), else that evaluation's best source; None without one."""
    version = latest_version_dir(
        os.path.join(serving_dir, serving_layout.EVALUATION_MODEL), evaluation_result.EVALUATION_FILE
    )
    if version is None:
        return None
    served = os.path.join(version, serving_layout.SERVED_SOURCES_FILE)
    if os.path.isfile(served):
        with open(served, encoding="utf-8") as f:
            return json.load(f).get("default_source")
    return evaluation_result.read_evaluation(version).best_source


def not_measured(reason: str, source: str) -> dict:
    """`stability` when there is nothing to compare with: the headline is null and says why."""
    return {"k": K, "source": source, "overlap_at_10": None, "reason": reason, "sources": {}}


def measure(
    serving_dir: str | None,
    catalogue: Catalogue,
    sources: Mapping[str, Source],
    popularity: np.ndarray,
    default_source: str,
    max_items: int = MAX_ITEMS,
) -> dict:
    """evaluation.json's `stability`: every candidate source that serving also holds, compared with its
    served version, and the headline for the default model (see the module docstring)."""
    if not serving_dir:
        return not_measured("no serving directory was given to the RelatedEvaluator", default_source)
    nothing = f"nothing was served under {serving_dir} when this candidate was evaluated"
    if not os.path.isdir(serving_dir):
        return not_measured(nothing, default_source)
    buckets = metrics_lib.item_buckets(popularity)

    def served_lists(source: str) -> ServedLists | None:
        directory = served_directory(serving_dir, source)
        return None if directory is None else ServedLists(directory, source, catalogue)

    def versus(served: ServedLists, candidate: Source) -> dict:
        version = int(os.path.basename(served.directory))
        return {"served_version": version, **compare(served, candidate, buckets, max_items)}

    served_default = served_default_source(serving_dir)
    if (
        served_default not in serving_layout.SOURCE_MODELS
        or served_directory(serving_dir, served_default) is None
    ):
        served_default = default_source  # no record of what the default model answered: the same source
    per_source, not_served, from_default = {}, [], {}
    for name, source in sources.items():  # one served table in memory at a time (a few GB at 1M items)
        if name not in serving_layout.SOURCE_MODELS:
            continue
        served = served_lists(name)
        if served is None:
            not_served.append(name)
            continue
        per_source[name] = versus(served, source)
        if name == served_default:
            from_default = {other: versus(served, lists) for other, lists in sources.items() if other != name}
            from_default[name] = per_source[name]
        del served
    if not per_source:
        return not_measured(nothing, default_source)
    if not from_default and served_default in serving_layout.SOURCE_MODELS:
        # a source the candidate no longer has (e.g. board, served before --collections was dropped)
        served = served_lists(served_default)
        if served is not None:
            from_default = {other: versus(served, lists) for other, lists in sources.items()}
    headline = from_default.get(default_source) or {
        "overlap_at_10": None,
        "reason": f"serving holds no version of {served_default} to compare {default_source} with",
    }
    headline = {**headline, "reason": headline.get("reason")}
    return {
        "k": K,
        "definition": DEFINITION,
        "source": default_source,
        "served_source": served_default,
        "pinned_version": push_records.pinned_version(serving_dir),
        **headline,
        "sources": per_source,
        "from_served_default": from_default,
        "not_served": not_served,
    }
