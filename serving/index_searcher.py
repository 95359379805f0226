"""Related items from a pushed ScaNN index, and the choice of which pushed version to serve.

Pushed versions live in integer-named subdirectories of a base directory; a push is written under a
dot-prefixed temporary name and renamed into place, and `index.json` is the last file an index gets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from components.related_pusher import push_lib
from components.scann_indexer import index_lib

DEFAULT_MAX_K = 100


class RelatedItemsSearcher:
    """Nearest neighbours of indexed items, by the index's own stored vectors; one index version."""

    def __init__(self, directory: str, max_k: int = DEFAULT_MAX_K):
        if isinstance(max_k, bool) or not isinstance(max_k, int) or max_k < 1:
            raise ValueError(f"max_k must be an integer >= 1; got {max_k!r}")
        self.directory = directory
        self._searcher, self._item_ids, self._embeddings, self.metadata = index_lib.load_index(directory)
        self._rows = {item_id: row for row, item_id in enumerate(self._item_ids)}
        # An item has at most num_items - 1 related items: itself is excluded.
        self.max_k = min(max_k, len(self._item_ids) - 1)

    @property
    def num_items(self) -> int:
        return len(self._item_ids)

    @property
    def item_ids(self) -> Sequence[str]:
        """Every indexed id, in row order (an immutable copy, made once)."""
        if not isinstance(self._item_ids, tuple):
            self._item_ids = tuple(self._item_ids)
        return self._item_ids

    def related(self, item_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, float]] | None]:
        """For each id: its k most similar other items as (id, similarity), best first; None if unknown."""
        if isinstance(item_ids, str | bytes):
            raise TypeError(
                f"item_ids must be a list of ids, not a single {type(item_ids).__name__}: {item_ids!r}"
            )
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= self.max_k:
            raise ValueError(
                f"k must be an integer in [1, {self.max_k}] (max_k for this index of {self.num_items} "
                f"items); got {k!r}"
            )
        result: dict[str, list[tuple[str, float]] | None] = dict.fromkeys(item_ids)
        known = [item_id for item_id in result if item_id in self._rows]
        if not known:
            return result
        rows = np.array([self._rows[item_id] for item_id in known])
        # k + 1: the query item is indexed too and usually comes back first.
        neighbours, scores = self._searcher.search_batched(
            self._embeddings[rows],
            final_num_neighbors=k + 1,
            pre_reorder_num_neighbors=self._pre_reorder(k),
            leaves_to_search=self._leaves_to_search(k),
        )
        for item_id, row, row_neighbours, row_scores in zip(known, rows, neighbours, scores, strict=True):
            result[item_id] = [
                (self._item_ids[neighbour], float(score))
                for neighbour, score in zip(row_neighbours, row_scores, strict=True)
                if neighbour != row
            ][:k]
        return result

    def _leaves_to_search(self, k: int) -> int | None:
        """More leaves for a k above the built one: too few candidates make ScaNN pad its answer."""
        built = self.metadata.get("num_leaves_to_search")
        if not built:  # brute force: no leaves
            return None
        scale = -(-(k + 1) // (self.metadata["k"] + 1))  # ceil
        return min(self.metadata["num_leaves"], built * scale)

    def _pre_reorder(self, k: int) -> int | None:
        """Candidates rescored exactly: the built-in number, or more when k exceeds the k it was built for."""
        built = self.metadata.get("reorder_num_neighbors")
        if built is None:  # brute force: nothing to reorder
            return None
        return max(built, (k + 1) * self.metadata["settings"]["reorder_multiplier"])


def latest_version_dir(base: str, marker: str = index_lib.METADATA_FILE) -> str | None:
    """The highest integer-named subdirectory of `base` holding `marker`, the file a complete version gets
    last (an index's index.json by default), if any.

    Names starting with '.' (pushes in progress) and any other non-integer names are ignored.
    """
    for version in reversed(push_lib.existing_versions(base)):
        if os.path.isfile(os.path.join(base, str(version), marker)):
            return os.path.join(base, str(version))
    return None
