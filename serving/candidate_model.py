"""The `cooccurrence`, `board`, `blend` and `coldstart` models: pushed candidate tables served with the
`related` signature.

Same inputs and outputs as `related` (see related_model.py): `scores` are the source's own (co-occurrence
association, or the blend's fused rank score), and `distances` are the cosine distances between the query's
and each candidate's embeddings from the index pushed in the same version - the feature a reranker takes,
whichever source proposed the candidate (2.0 where an item has no embedding). The `coldstart` table answers
every item engaged in the window, an item engaged with nothing else by the window's most engaged items
(`source` "popular"; formats/coldstart.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from formats import candidate_table, coldstart, index_files, push_records, serving_layout
from serving.embedding_export import read_index_vectors
from serving.related_model import RelatedServable, RelatedSettings

NO_EMBEDDING_DISTANCE = 2.0


class TableSearcher:
    """A candidate table plus the same version's embeddings."""

    def __init__(self, table_dir: str, index_dir: str, max_k: int):
        self.table = candidate_table.load_table(table_dir)
        self._answers = self.table
        self.max_k = min(max_k, self.table.top_n)
        self.num_items = len(self.table.items)
        self._rows: dict[str, int] = {}
        self._vectors = np.zeros((0, 1), dtype=np.float32)
        if os.path.isdir(index_dir):
            vectors = read_index_vectors(index_dir)
            norms = np.maximum(np.linalg.norm(vectors.vectors, axis=1, keepdims=True), 1e-12)
            self._vectors = (vectors.vectors / norms).astype(np.float32)
            self._rows = {item: row for row, item in enumerate(vectors.item_ids)}

    def related(self, item_ids: Sequence[str], k: int):
        return self._answers.related(item_ids, k)

    def distances(self, item_id: str, others: Sequence[str]) -> np.ndarray:
        """Cosine distance from `item_id` to each of `others`; NO_EMBEDDING_DISTANCE where one is missing."""
        out = np.full(len(others), NO_EMBEDDING_DISTANCE, dtype=np.float32)
        query = self._rows.get(item_id)
        if query is None:
            return out
        rows = [self._rows.get(other) for other in others]
        present = [i for i, row in enumerate(rows) if row is not None]
        if present:
            similarity = self._vectors[[rows[i] for i in present]] @ self._vectors[query]
            out[present] = 1.0 - similarity
        return out


class ColdStartSearcher(TableSearcher):
    """The window's `coldstart` table: an item with no candidate gets the popular fallback; `sources` says
    which answered each id."""

    def __init__(self, table_dir: str, index_dir: str, max_k: int):
        super().__init__(table_dir, index_dir, max_k)
        self._answers = coldstart.ColdStartAnswers(self.table)

    def sources(self, item_ids: Sequence[str]) -> list[str]:
        return [self._answers.source_of(item) or "" for item in item_ids]


def distance_index(related_base: str, version: int) -> str:
    """The index whose embeddings give a table version its distances: the same version's, or, after a push
    that kept the model back (tables only), the newest index pushed before it."""
    serving_dir, model = os.path.split(os.path.abspath(related_base))
    older = [
        v
        for v in serving_layout.existing_versions(related_base)
        if v <= version and push_records.manifest_of(serving_dir, model, v)[0]
    ]
    for candidate in reversed(older):
        path = os.path.join(related_base, str(candidate))
        if os.path.isfile(os.path.join(path, index_files.METADATA_FILE)):
            return path
    return os.path.join(related_base, str(version))  # absent: TableSearcher reports every distance as unknown


class CandidateTableLoader:
    """Loads `<base>/<name>/<version>/` candidate tables, with `distance_index` for distances."""

    def __init__(self, name: str, settings: RelatedSettings | None = None):
        self.name = name
        self.settings = settings or RelatedSettings()

    def missing_files(self, version_dir: str) -> list[str]:
        names = (
            candidate_table.ITEMS_FILE,
            candidate_table.NEIGHBOURS_FILE,
            candidate_table.SCORES_FILE,
            candidate_table.POPULARITY_FILE,
            candidate_table.META_FILE,
        )
        return [name for name in names if not os.path.isfile(os.path.join(version_dir, name))]

    def load(self, version_dir: str, version: int) -> RelatedServable:
        base = os.path.dirname(os.path.dirname(os.path.abspath(version_dir)))
        index_dir = distance_index(os.path.join(base, serving_layout.PIN2VEC_SIMILAR_MODEL), version)
        kind = ColdStartSearcher if self.name == serving_layout.COLDSTART_MODEL else TableSearcher
        searcher = kind(version_dir, index_dir, self.settings.max_k)
        return RelatedServable(version_dir, version, self.settings, searcher=searcher, source=self.name)
