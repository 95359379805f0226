"""Related items from a pushed ScaNN index, and the choice of which pushed version to serve.

Pushed versions live in integer-named subdirectories of a base directory; a push is written under a
dot-prefixed temporary name and renamed into place, and `index.json` is the last file an index gets.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Sequence

import numpy as np

from formats import index_files, push_records, serving_layout

DEFAULT_MAX_K = 100
PAD_ID = b""  # the id, score of a slot with no related item (unknown id, or fewer than k found)
PAD_SCORE = -1.0
CANDIDATES_PER_RESCORED = 4  # leaves searched hold at least this many candidates per exactly rescored one


@dataclasses.dataclass(frozen=True)
class RelatedArrays:
    """Related items of n ids as arrays; rows of unknown ids (and slots past what was found) padded."""

    known: np.ndarray  # bool [n]: the id is in the index
    ids: np.ndarray  # object [n, k]: related ids as vocabulary bytes, best first; PAD_ID where none
    scores: np.ndarray  # float32 [n, k]: similarity; PAD_SCORE where none


class RelatedItemsSearcher:
    """Nearest neighbours of indexed items, by the index's own stored vectors; one index version."""

    def __init__(self, directory: str, max_k: int = DEFAULT_MAX_K):
        if isinstance(max_k, bool) or not isinstance(max_k, int) or max_k < 1:
            raise ValueError(f"max_k must be an integer >= 1; got {max_k!r}")
        self.directory = directory
        self._searcher, self._item_ids, self.vectors, self.metadata = index_files.load_index(directory)
        self.query_vectors = index_files.load_queries(
            directory, self.vectors
        )  # each row's query, as searched
        self._rows = {item_id: row for row, item_id in enumerate(self._item_ids)}
        # An item has at most num_items - 1 related items: itself is excluded.
        self.max_k = min(max_k, len(self._item_ids) - 1)
        self._options_by_k: dict[int, dict] = {}  # ScaNN's search options for each k asked so far
        self._check_stored_vectors()

    def _check_stored_vectors(self, samples: int = 16) -> None:
        """ScaNN scores its answers exactly (brute force, or reordering) against its own copy of the vectors;
        for a few items, those scores must be the dot products with embeddings.npy. A garbled or mismatched
        ScaNN dataset fails here instead of serving wrong neighbours."""
        if self.num_items < 2:
            return
        rows = np.unique(np.linspace(0, self.num_items - 1, min(samples, self.num_items)).astype(np.int64))
        found, scores = self._searcher.search_batched(
            self.query_vectors[rows], final_num_neighbors=min(10, self.num_items)
        )
        found, scores = np.asarray(found), np.asarray(scores)
        valid = (found >= 0) & (found < self.num_items)
        expected = np.einsum("qd,qkd->qk", self.query_vectors[rows], self.vectors[np.where(valid, found, 0)])
        wrong = ~valid | ~np.isclose(scores, expected, rtol=1e-3, atol=1e-4)
        if wrong.any():
            query, slot = np.argwhere(wrong)[0]
            raise ValueError(
                f"index in {self.directory} is inconsistent: ScaNN's stored vectors do not match "
                f"{index_files.EMBEDDINGS_FILE} (item row {rows[query]}: neighbour {found[query, slot]} "
                f"scored {scores[query, slot]:.5f}, the embeddings give {expected[query, slot]:.5f})"
            )

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
        self._check(item_ids, k)
        result: dict[str, list[tuple[str, float]] | None] = dict.fromkeys(item_ids)
        known = [item_id for item_id in result if item_id in self._rows]
        if not known:
            return result
        names = self._item_ids
        for item_id, pairs in zip(known, self._search([self._rows[i] for i in known], k), strict=True):
            result[item_id] = [(names[other], score) for other, score in pairs]
        return result

    def related_arrays(self, item_ids: Sequence[str], k: int) -> RelatedArrays:
        """`related` as arrays, one row per given id (duplicates included), padded: what a server sends.

        The same neighbours and scores as `related`, built with a few list operations and three arrays, which
        costs less per request than `related`'s dict and tuples.
        """
        self._check(item_ids, k)
        query_rows = [self._rows.get(item_id) for item_id in item_ids]
        positions = [i for i, row in enumerate(query_rows) if row is not None]
        n = len(item_ids)
        id_rows, score_rows = [[PAD_ID] * k] * n, [[PAD_SCORE] * k] * n
        if positions:
            found = self._search([query_rows[i] for i in positions], k)
            for position, pairs in zip(positions, found, strict=True):
                id_rows[position], score_rows[position] = self._padded_row(pairs, k)
        return RelatedArrays(
            known=np.array([row is not None for row in query_rows], dtype=np.bool_),
            ids=np.array(id_rows, dtype=object).reshape(n, k),
            scores=np.array(score_rows, dtype=np.float32).reshape(n, k),
        )

    def neighbour_rows(
        self, query_rows: np.ndarray, k: int, parallel: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """`related_arrays` of index rows, as index rows: (int64 [n, k] neighbour rows, -1 where none;
        float32 [n, k] similarities, PAD_SCORE where none). The same search and answers, without an id string
        or a Python tuple per neighbour: a catalogue-wide evaluation asks this for every row (77M neighbours
        at 772k items). `parallel`: ScaNN's threads over the batch."""
        self._check((), k)
        query_rows = np.asarray(query_rows, dtype=np.int64)
        rows = np.full((len(query_rows), k), -1, dtype=np.int64)
        scores = np.full((len(query_rows), k), PAD_SCORE, dtype=np.float32)
        if not len(query_rows):
            return rows, scores
        neighbours, similarities = self._searcher.search_batched(
            self.query_vectors[query_rows], parallel=parallel, **self._options(k)
        )
        neighbours = np.asarray(neighbours, dtype=np.int64)
        similarities = np.asarray(similarities, dtype=np.float32)
        # As _search: the query's own row dropped, the first k of the rest kept, in ScaNN's order.
        keep = (neighbours != query_rows[:, None]) & (neighbours >= 0) & (neighbours < self.num_items)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        kept = np.take_along_axis(keep, order, axis=1)
        width = order.shape[1]
        rows[:, :width] = np.where(kept, np.take_along_axis(neighbours, order, axis=1), -1)
        scores[:, :width] = np.where(kept, np.take_along_axis(similarities, order, axis=1), PAD_SCORE)
        return rows, scores

    def related_row(self, item_id: str, k: int) -> tuple[list[bytes], list[float]] | None:
        """One id's row of `related_arrays` as lists (ids as vocabulary bytes, similarities), padded to k;
        None when the id is not indexed. A server's usual request, answered without building arrays."""
        self._check((), k)
        row = self._rows.get(item_id)
        if row is None:
            return None
        (pairs,) = self._search([row], k)
        return self._padded_row(pairs, k)

    def _padded_row(self, pairs: list[tuple[int, float]], k: int) -> tuple[list[bytes], list[float]]:
        """`_search`'s (row, similarity) pairs of one query as ids (vocabulary bytes) and similarities,
        padded to k."""
        names, encoding, errors = self._item_ids, index_files.ID_ENCODING, index_files.ID_ERRORS
        pad = k - len(pairs)
        # encode_item_id, inlined: this runs k times per request
        ids = [names[other].encode(encoding, errors) for other, _ in pairs] + [PAD_ID] * pad
        return ids, [score for _, score in pairs] + [PAD_SCORE] * pad

    def _check(self, item_ids: Sequence[str], k: int) -> None:
        if isinstance(item_ids, str | bytes):
            raise TypeError(
                f"item_ids must be a list of ids, not a single {type(item_ids).__name__}: {item_ids!r}"
            )
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= self.max_k:
            raise ValueError(
                f"k must be an integer in [1, {self.max_k}] (max_k for this index of {self.num_items} "
                f"items); got {k!r}"
            )

    def _search(self, query_rows: list[int], k: int) -> list[list[tuple[int, float]]]:
        """Per query row: up to k (row, similarity) of the other items, best first.

        Searches k + 1: the query item is indexed too and usually comes back first.
        """
        options = self._options(k)
        if len(query_rows) == 1:  # a server's usual request: ScaNN's single search costs 20% less
            neighbours, scores = self._searcher.search(self.query_vectors[query_rows[0]], **options)
            neighbours, scores = [np.asarray(neighbours).tolist()], [np.asarray(scores).tolist()]
        else:
            neighbours, scores = self._searcher.search_batched(self.query_vectors[query_rows], **options)
            neighbours, scores = np.asarray(neighbours).tolist(), np.asarray(scores).tolist()
        rows = zip(query_rows, neighbours, scores, strict=True)
        return [
            [(other, score) for other, score in zip(others, similarities, strict=True) if other != row][:k]
            for row, others, similarities in rows
        ]

    def _options(self, k: int) -> dict:
        """ScaNN's search options for k, made once per k asked."""
        options = self._options_by_k.get(k)
        if options is None:
            options = self._options_by_k[k] = {
                "final_num_neighbors": k + 1,
                "pre_reorder_num_neighbors": self._pre_reorder(k),
                "leaves_to_search": self._leaves_to_search(k),
            }
        return options

    def _leaves_to_search(self, k: int) -> int | None:
        """The built breadth, widened only where its leaves hold too few candidates for a larger k (ScaNN
        pads an answer it cannot fill): enough leaves to hold 4x the candidates rescored exactly. Scaling the
        breadth with k instead made k=100 search every leaf of a large index (quadratic for a catalogue-wide
        evaluation)."""
        built = self.metadata.get("num_leaves_to_search")
        if not built:  # brute force: no leaves
            return None
        if k <= self.metadata["k"]:  # the breadth the indexer measured recall at
            return built
        per_leaf = max(1.0, self.metadata["num_items"] / self.metadata["num_leaves"])
        needed = math.ceil(CANDIDATES_PER_RESCORED * self._pre_reorder(k) / per_leaf)
        return min(self.metadata["num_leaves"], max(built, needed))

    def _pre_reorder(self, k: int) -> int | None:
        """Candidates rescored exactly: the built-in number, or more when k exceeds the k it was built for."""
        built = self.metadata.get("reorder_num_neighbors")
        if built is None:  # brute force: nothing to reorder
            return None
        return max(built, (k + 1) * self.metadata["settings"]["reorder_multiplier"])


def latest_version_dir(base: str, marker: str = index_files.METADATA_FILE) -> str | None:
    """The highest integer-named subdirectory of `base` holding `marker`, the file a complete version gets
    last (an index's index.json by default), that is committed and matches its manifest, if any: a damaged
    version is skipped, with a warning, for the newest good one.

    Names starting with '.' (pushes in progress) and any other non-integer names are ignored.
    """
    for version in reversed(serving_layout.existing_versions(base)):
        directory = os.path.join(base, str(version))
        if not os.path.isfile(os.path.join(directory, marker)):
            continue
        serving_dir, model = os.path.split(os.path.abspath(base))
        if not push_records.manifest_of(serving_dir, model, version)[0]:
            continue  # not committed yet, or newer than the pinned version: not there for readers
        try:
            push_records.check_model_version(directory)
        except push_records.CorruptVersionError as error:
            logging.getLogger("pin2vec").warning("skipping version %d: %s", version, error)
            continue
        return directory
    return None
