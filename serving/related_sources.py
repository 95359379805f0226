"""Opening one of the pushed related-item sources by name: the Pin2Vec indexes (pin2vec: what the network
predicts next; pin2vec_similar: cosine neighbours) or the co-occurrence, board and blend tables.

The RelatedPusher publishes them side by side under `<serving>/<model>/<version>/` (serving_layout's
SOURCE_MODELS), with `<serving>/evaluation/<version>/served_sources.json` naming the default source: the
best on the run's validation queries among those pushed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from formats import candidate_table, coldstart, evaluation_result, index_files, serving_layout
from formats.index_searcher import RelatedItemsSearcher, latest_version_dir

SOURCES = tuple(serving_layout.SOURCE_MODELS)


def default_source(serving_dir: str) -> str:
    """The source the last push chose: the evaluation's best on validation, or the best of what was pushed
    when the model was kept back. Without one: pin2vec, or pin2vec_similar where only the cosine index was
    pushed (before the next-engagement index existed)."""
    version = latest_version_dir(
        os.path.join(serving_dir, serving_layout.EVALUATION_MODEL), evaluation_result.EVALUATION_FILE
    )
    if version is not None:
        served = os.path.join(version, serving_layout.SERVED_SOURCES_FILE)
        if os.path.isfile(served):  # what the pusher chose among the sources it pushed
            with open(served, encoding="utf-8") as f:
                best = json.load(f).get("default_source")
        else:  # versions pushed before the pusher recorded it: every source went out
            best = evaluation_result.read_evaluation(version).best_source
        # An evaluation from before the next-engagement index names "pin2vec" for what is now pin2vec_similar
        # (the `related` folder): a source without a pushed version falls through to the indexes below.
        if best in SOURCES and latest_version(serving_dir, best) is not None:
            return best
    for source in serving_layout.INDEX_SOURCES:
        if latest_version(serving_dir, source) is not None:
            return source
    return serving_layout.INDEX_SOURCES[0]


def latest_version(serving_dir: str, source: str) -> str | None:
    """The newest complete pushed version directory of `source` (its last-written file present), if any."""
    base = os.path.join(serving_dir, serving_layout.SOURCE_MODELS[source])
    index = source in serving_layout.INDEX_SOURCES
    return latest_version_dir(base, index_files.METADATA_FILE if index else candidate_table.META_FILE)


def open_source(serving_dir: str, source: str, max_k: int = 100):
    """(an object with .related(ids, k), its version dir). Errors say what to run when nothing is pushed."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
    version = latest_version(serving_dir, source)
    if version is None:
        base = os.path.join(serving_dir, serving_layout.SOURCE_MODELS[source])
        raise FileNotFoundError(
            f"no pushed {source} version under {base}; run `pin2vec run` first (or check that its last run "
            "was pushed)"
        )
    if source in serving_layout.INDEX_SOURCES:
        return RelatedItemsSearcher(version, max_k=max_k), version
    table = candidate_table.load_table(version)
    return (coldstart.ColdStartAnswers(table) if source == coldstart.COLDSTART_SOURCE else table), version


class FallbackAnswerer:
    """What `related` answers, as the server does (serving/fallback_model.py): each id from the first of
    `answerers` ((source, object with .related(ids, k)), in formats/coldstart.py's order) with a list."""

    def __init__(self, answerers: Sequence[tuple[str, object]]):
        self.answerers = list(answerers)

    def related(self, item_ids: Sequence[str], k: int) -> dict[str, tuple[str, list] | None]:
        """id -> (the answering source, [(item, score), ...]), or None when no source has a list for it."""
        answers: dict[str, tuple[str, list] | None] = dict.fromkeys(item_ids)
        for source, answerer in self.answerers:
            missing = [item for item, answer in answers.items() if answer is None]
            if not missing:
                break
            for item, found in answerer.related(missing, k).items():
                if found:
                    answers[item] = (_source_of(answerer, item, source), found)
        return answers


def _source_of(answerer, item: str, source: str) -> str:
    """The coldstart table names its own answers (coldstart, or the popular fallback)."""
    source_of = getattr(answerer, "source_of", None)
    return source_of(item) if source_of is not None else source


def open_related(serving_dir: str, source: str | None = None, max_k: int = 100):
    """(FallbackAnswerer, the first source's version dir): `source` alone when given; else the default
    source followed by the pushed fallbacks, as the `related` model answers."""
    first = source or default_source(serving_dir)
    answerer, version = open_source(serving_dir, first, max_k)
    answerers = [(first, answerer)]
    if source is None:
        for fallback in coldstart.fallback_chain(first)[1:]:
            if latest_version(serving_dir, fallback) is not None:
                answerers.append((fallback, open_source(serving_dir, fallback, max_k)[0]))
    return FallbackAnswerer(answerers), version
