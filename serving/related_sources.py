"""Opening one of the pushed related-item sources (pin2vec index, co-occurrence or blend table) by name.

The RelatedPusher publishes them side by side under `<serving>/<source>/<version>/`, together with
`<serving>/evaluation/<version>/evaluation.json`, whose `best_source` (chosen on the run's validation queries)
is the default.
"""

from __future__ import annotations

import json
import os

from components import candidate_table
from serving.index_searcher import RelatedItemsSearcher, latest_version_dir

SOURCES = ("pin2vec", "cooccurrence", "blend")
_DIRECTORY = {"pin2vec": "related", "cooccurrence": "cooccurrence", "blend": "blend"}


def default_source(serving_dir: str) -> str:
    """The source the last pushed evaluation found best on validation; pin2vec when there is none."""
    version = latest_version_dir(os.path.join(serving_dir, "evaluation"), "evaluation.json")
    if version is None:
        return "pin2vec"
    with open(os.path.join(version, "evaluation.json"), encoding="utf-8") as f:
        best = json.load(f).get("best_source", "pin2vec")
    return best if best in SOURCES else "pin2vec"


def open_source(serving_dir: str, source: str, max_k: int = 100):
    """(an object with .related(ids, k), its version dir). Errors say what to run when nothing is pushed."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
    base = os.path.join(serving_dir, _DIRECTORY[source])
    if source == "pin2vec":
        version = latest_version_dir(base)
    else:
        version = latest_version_dir(base, candidate_table.META_FILE)
    if version is None:
        raise FileNotFoundError(
            f"no pushed {source} version under {base}; run `pin2vec run` first (or check that its last run "
            "was pushed)"
        )
    if source == "pin2vec":
        return RelatedItemsSearcher(version, max_k=max_k), version
    return candidate_table.load_table(version), version
