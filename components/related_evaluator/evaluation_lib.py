"""Evaluating every candidate source the same way and choosing the blend on validation, as pure functions.

A source is a padded array of candidate rows over one sorted catalogue (catalogue_lib); the Pin2Vec source
is what the pushed ScaNN index answers, so the figures are what users get. The blend is either weighted RRF
or the learned reranker (rerank_lib). Both are fitted on the `rerank` queries (transitions held out before
each user's validation one), so their validation figures are out of sample and compare them fairly;
validation then chooses the reranker's L2, RRF or reranker, and the best source. The test queries are
reported, never tuned on. The chosen blend is computed for the whole catalogue in chunks of rows.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from components.related_evaluator import blend_lib, catalogue_lib, metrics_lib, rerank_lib
from components.related_evaluator.catalogue_lib import Catalogue, Queries, Source

# Tie order of best_source. pin2vec: what the network predicts next; pin2vec_similar: its cosine neighbours.
SOURCES = ("pin2vec", "pin2vec_similar", "cooccurrence", "board", "blend")
CHUNK = 8192  # catalogue rows blended or reranked at once: bounds the temporary arrays (~100 MB)
SWEEP_K = 10  # the blend grid is judged on HR@10, then MRR@10
WORKERS = min(2, os.cpu_count() or 1)  # threads over the catalogue's chunks; each holds one chunk's arrays


@dataclasses.dataclass(frozen=True)
class Candidates:
    """The two blended candidate sources over one catalogue, the engagement counts they are bucketed by, and
    any other source measured beside them (`extra`, by name: e.g. pin2vec_similar)."""

    catalogue: Catalogue
    pin2vec: Source
    cooccurrence: Source
    popularity: np.ndarray  # int64 [N]: engagement count (0 where the co-occurrence table has no row)
    counted: np.ndarray  # bool [N]: the item has a popularity (the table's items): examples come from these
    extra: Mapping[str, Source] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.catalogue)
        sources = [self.pin2vec, self.cooccurrence, *self.extra.values()]
        if any(len(source) != n for source in sources) or self.popularity.shape != (n,):
            raise ValueError(f"sources and popularity must have one row per catalogue item ({n})")
        clashes = sorted(set(self.extra) & {"pin2vec", "cooccurrence", "blend"})
        if clashes:
            raise ValueError(f"extra sources {clashes} clash with the blended sources' names")

    def unblended(self) -> dict[str, Source]:
        """Every source but the blend, by name, in SOURCES order."""
        named = {"pin2vec": self.pin2vec, "cooccurrence": self.cooccurrence, **self.extra}
        order = {name: i for i, name in enumerate(SOURCES)}
        return dict(sorted(named.items(), key=lambda item: order.get(item[0], len(order))))


def candidates_from_lists(
    embedding: Mapping[str, Sequence[tuple[str, float]] | None],
    cooccurrence: Mapping[str, Sequence[tuple[str, float]] | None],
    popularity: Mapping[str, int],
    top_n: int,
    extra: Mapping[str, Mapping[str, Sequence[tuple[str, float]] | None]] | None = None,
) -> Candidates:
    """Candidates from item -> ranked lists (small inputs: tests, tools); the catalogue: every id named.
    `extra`: other sources' lists by source name (e.g. board)."""
    extra = extra or {}
    every = (embedding, cooccurrence, *extra.values())
    catalogue = catalogue_lib.catalogue_of(
        *every, popularity, *([c for c, _ in ranked or []] for lists in every for ranked in lists.values())
    )
    counts = np.zeros(len(catalogue), dtype=np.int64)
    counted = np.zeros(len(catalogue), dtype=bool)
    if popularity:
        rows = catalogue.rows(list(popularity))
        counts[rows] = list(popularity.values())
        counted[rows] = True
    return Candidates(
        catalogue,
        catalogue_lib.source_from_lists(embedding, catalogue, top_n),
        catalogue_lib.source_from_lists(cooccurrence, catalogue, top_n),
        counts,
        counted,
        {name: catalogue_lib.source_from_lists(lists, catalogue, top_n) for name, lists in extra.items()},
    )


def blend_rows(
    items: np.ndarray, candidates: Candidates, weight: float, settings: blend_lib.BlendSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The RRF blend of some items (rows; -1: unknown, an empty list): (candidates, float64 scores)."""
    items = np.asarray(items, dtype=np.int64)
    popularity = np.where(items >= 0, candidates.popularity[np.maximum(items, 0)], 0)
    return blend_lib.fuse_rows(
        candidates.pin2vec.rows(items), candidates.cooccurrence.rows(items), popularity, weight, settings
    )


def all_rows(num_items: int, top_n: int, rows_of, chunk: int = CHUNK, workers: int = WORKERS) -> Source:
    """A Source over the whole catalogue from `rows_of(item rows) -> (candidates, scores)`, chunk by chunk;
    `workers` threads take chunks (numpy's sorts, gathers and products release the GIL), each writing its
    own rows: the same Source whatever their number."""
    result = catalogue_lib.empty_source(num_items, top_n)

    def fill(start: int) -> None:
        items = np.arange(start, min(start + chunk, num_items))
        ids, scores = rows_of(items)
        result.ids[items] = ids
        result.scores[items] = scores

    starts = range(0, num_items, chunk)
    if workers <= 1 or len(starts) <= 1:
        for start in starts:
            fill(start)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(fill, starts))  # raises the first chunk's error, if any
    return result


def blend_all(
    candidates: Candidates, weight: float, settings: blend_lib.BlendSettings, chunk: int = CHUNK
) -> Source:
    """Every catalogue item's RRF blend."""
    return all_rows(
        len(candidates.catalogue),
        settings.top_n,
        lambda items: blend_rows(items, candidates, weight, settings),
        chunk,
    )


def rerank_all(
    candidates: Candidates, inputs: rerank_lib.RerankInputs, model: rerank_lib.RerankModel, top_n: int,
    chunk: int = CHUNK // 8,
) -> Source:  # fmt: skip
    """Every catalogue item's reranked pool (pools are ~2 x pool_per_source wide: smaller chunks)."""
    return all_rows(
        len(candidates.catalogue),
        top_n,
        lambda items: rerank_lib.rerank_rows(items, inputs, model, top_n),
        chunk,
    )


def query_ranks(queries: Queries, rows_of) -> np.ndarray:
    """Each query's target rank (0: a miss) in the answer `rows_of(distinct query items)` gives, the query
    item removed; answers are computed once per distinct item."""
    distinct, which = np.unique(queries.items, return_inverse=True)
    answers, _ = rows_of(distinct)
    ranks, _ = metrics_lib.answer_ranks(answers[which], queries.items, queries.targets, answers.shape[1])
    return ranks


def choose_blend_weight(
    validation: Queries, candidates: Candidates, settings: blend_lib.BlendSettings
) -> tuple[float, list[dict]]:
    """The grid weight with the best validation HR@10 (then MRR@10; then the lower weight, for stability).

    Each query's target rank comes from blend_lib.sweep_target_ranks: the ranks `query_ranks` gives for the
    RRF blend, for every weight at once, without ranking a list per weight."""
    distinct, which = np.unique(validation.items, return_inverse=True)
    popularity = np.where(distinct >= 0, candidates.popularity[np.maximum(distinct, 0)], 0)
    every = blend_lib.sweep_target_ranks(
        candidates.pin2vec.rows(distinct),
        candidates.cooccurrence.rows(distinct),
        popularity,
        which,
        validation.items,
        validation.targets,
        settings.weights,
        settings,
    )
    sweep = [
        {
            "weight": weight,
            "hit_rate_at_10": metrics_lib.rank_hit_rate(ranks, SWEEP_K),
            "mrr_at_10": metrics_lib.rank_mrr(ranks, SWEEP_K),
        }
        for weight, ranks in zip(settings.weights, every, strict=True)
    ]
    best = max(sweep, key=lambda s: (round(s["hit_rate_at_10"], 9), round(s["mrr_at_10"], 9), -s["weight"]))
    return best["weight"], sweep


def choose_blend(
    validation: Queries, candidates: Candidates, settings: blend_lib.BlendSettings
) -> tuple[blend_lib.BlendSettings, float, list[dict], list[dict]]:
    """The fusion constant and weight with the best validation HR@10 (then MRR@10; then the smaller constant).

    Returns (settings with the chosen rrf_k, weight, that constant's weight sweep, the best of each constant).
    """
    per_k = []
    for rrf_k in settings.rrf_ks or (settings.rrf_k,):
        candidate = dataclasses.replace(settings, rrf_k=rrf_k)
        weight, sweep = choose_blend_weight(validation, candidates, candidate)
        best = next(s for s in sweep if s["weight"] == weight)
        per_k.append((candidate, weight, sweep, {"rrf_k": rrf_k, **best}))
    chosen = max(
        per_k,
        key=lambda c: (round(c[3]["hit_rate_at_10"], 9), round(c[3]["mrr_at_10"], 9), -c[3]["rrf_k"]),
    )
    return chosen[0], chosen[1], chosen[2], [c[3] for c in per_k]


def choose_reranker(
    training: Queries,
    validation: Queries,
    rrf_validation_hit_rate: float,
    rerank_inputs: rerank_lib.RerankInputs,
    rerank_settings: rerank_lib.RerankSettings,
) -> tuple[rerank_lib.RerankModel | None, dict]:
    """The reranker when its validation HR@10 beats the RRF blend's (ties keep RRF, the simpler); returns
    (the model or None, the record of the comparison for evaluation.json)."""
    choice = rerank_lib.choose_reranker(training, validation, rerank_inputs, rerank_settings)
    record: dict = {
        "training_queries": choice.training_queries,
        "max_training_queries": rerank_settings.max_training_queries,  # rerank queries sampled beyond this
        "sweep": choice.sweep,
    }
    if choice.model is None:
        record["skipped"] = (
            f"{choice.training_queries} rerank-split queries have their target in the candidate pool; "
            f"the reranker needs {rerank_settings.min_training_queries}"
        )
        return None, record
    record.update(
        {
            "l2": choice.model.l2,
            "validation_hit_rate_at_10": choice.hit_rate_at_10,
            "validation_mrr_at_10": choice.mrr_at_10,
            "rrf_validation_hit_rate_at_10": rrf_validation_hit_rate,
            "weights": dict(zip(choice.model.features, choice.model.weights.tolist(), strict=True)),
            "model": json.loads(choice.model.to_json()),
        }
    )
    better = round(choice.hit_rate_at_10, 9) > round(rrf_validation_hit_rate, 9)
    return (choice.model if better else None), record


def evaluate_all(
    splits: Mapping[str, Queries],
    sources: Mapping[str, Source],
    popularity: np.ndarray,
    catalogue_size: int,
    ks: Sequence[int] = metrics_lib.DEFAULT_KS,
) -> dict[str, dict[str, dict]]:
    """split -> source -> metrics (see metrics_lib.evaluate_rows)."""
    buckets = metrics_lib.item_buckets(popularity)
    return {
        split: {
            name: metrics_lib.evaluate_rows(
                queries.items, queries.targets, source.rows(queries.items), buckets, catalogue_size, ks
            )
            for name, source in sources.items()
        }
        for split, queries in splits.items()
    }


def compare_to(
    reference: str, splits: Mapping[str, Queries], sources: Mapping[str, Source], popularity: np.ndarray
) -> dict:
    """split -> each other source -> its paired HR@10 difference from `reference` (compare_rows)."""
    buckets = metrics_lib.item_buckets(popularity)
    by_split = {}
    for split, queries in splits.items():
        reference_rows = sources[reference].rows(queries.items)
        by_split[split] = {
            name: metrics_lib.compare_rows(
                queries.items, queries.targets, source.rows(queries.items), reference_rows, buckets, k=10
            )
            for name, source in sources.items()
            if name != reference
        }
    return {"against": reference, "k": 10, "splits": by_split}


def best_source(validation_metrics: Mapping[str, dict]) -> str:
    """The source with the best validation HR@10 (then MRR@10); ties go to the earlier source in SOURCES."""
    order = {name: i for i, name in enumerate(SOURCES)}
    return max(
        validation_metrics,
        key=lambda name: (
            round(validation_metrics[name]["hit_rate"]["10"], 9),
            round(validation_metrics[name]["mrr"]["10"], 9),
            -order.get(name, len(order)),
        ),
    )


def example_items(popularity: np.ndarray, counted: np.ndarray, per_bucket: int = 2) -> list[tuple[int, str]]:
    """(item row, bucket) for the most engaged items of each popularity bucket: the report's examples."""
    buckets = metrics_lib.item_buckets(popularity)
    chosen = []
    for b, bucket in enumerate(metrics_lib.BUCKETS):
        members = np.flatnonzero((buckets == b) & counted)
        members = members[np.lexsort((members, -popularity[members]))]
        chosen += [(int(item), bucket) for item in members[:per_bucket]]
    return chosen


def _ranked(catalogue: Catalogue, ids: np.ndarray, scores: np.ndarray) -> list[list]:
    return [[str(catalogue.ids[c]), float(s)] for c, s in zip(ids, scores, strict=True) if c >= 0]


def evaluate_sources(
    splits: Mapping[str, Queries],
    candidates: Candidates,
    settings: blend_lib.BlendSettings,
    rerank_inputs: rerank_lib.RerankInputs | None = None,
    rerank_settings: rerank_lib.RerankSettings | None = None,
    training: Queries | None = None,
) -> tuple[dict, Source, blend_lib.BlendSettings]:
    """The whole evaluation: the blend fitted on `training` (the rerank split) and chosen on
    splits["validation"]; every source measured on every split.

    Without training queries the RRF weight is chosen on validation (its validation figures are then
    in-sample) and there is no reranker; without `rerank_inputs` (or with the reranker disabled) the blend is
    the RRF one. Returns (the evaluation.json dict, the blend over every catalogue item, the chosen blend
    settings).
    """
    has_training = training is not None and len(training) > 0
    tuned_on = "rerank" if has_training else "validation"
    settings, weight, sweep, rrf_k_sweep = choose_blend(
        training if has_training else splits["validation"], candidates, settings
    )
    catalogue = candidates.catalogue
    model, rerank_record = None, None
    rerank_enabled = rerank_settings is not None and rerank_settings.enabled
    if has_training and rerank_inputs is not None and rerank_enabled:
        validation = splits["validation"]
        ranks = query_ranks(validation, lambda items: blend_rows(items, candidates, weight, settings))
        model, rerank_record = choose_reranker(
            training, validation, metrics_lib.rank_hit_rate(ranks, 10), rerank_inputs, rerank_settings
        )
    elif rerank_enabled:
        rerank_record = {"training_queries": 0, "sweep": [], "skipped": "the Examples have no rerank queries"}
    if model is not None:
        blend = rerank_all(candidates, rerank_inputs, model, settings.top_n)
        blend_rows_of = lambda items: rerank_lib.rerank_rows(items, rerank_inputs, model, settings.top_n)  # noqa: E731
    else:
        blend = blend_all(candidates, weight, settings)
        blend_rows_of = lambda items: blend_rows(items, candidates, weight, settings)  # noqa: E731
    sources = {**candidates.unblended(), "blend": blend}
    metrics = evaluate_all(splits, sources, candidates.popularity, len(catalogue))
    best = best_source(metrics["validation"])
    chosen = example_items(candidates.popularity, candidates.counted)
    example_blend = blend_rows_of(np.array([item for item, _ in chosen], dtype=np.int64))  # float64 scores
    examples = [
        {
            "item": str(catalogue.ids[item]),
            "bucket": bucket,
            "popularity": int(candidates.popularity[item]),
            "lists": {
                **{
                    name: source.ranked(catalogue, item, 10)
                    for name, source in candidates.unblended().items()
                },
                "blend": _ranked(catalogue, example_blend[0][row, :10], example_blend[1][row, :10]),
            },
        }
        for row, (item, bucket) in enumerate(chosen)
    ]
    result = {
        "ks": list(metrics_lib.DEFAULT_KS),
        "sources": list(sources),
        "best_source": best,
        "validation_out_of_sample": has_training,
        "catalogue_size": len(catalogue),
        "splits": metrics,
        "comparisons": compare_to(best, splits, sources, candidates.popularity),
        # Every other source against the network's own answers: how Pin2Vec compares, whichever source won.
        "comparisons_to_pin2vec": compare_to("pin2vec", splits, sources, candidates.popularity),
        "blend": {
            "method": "rerank" if model is not None else "rrf",
            "tuned_on": tuned_on,
            "training_queries": len(training) if has_training else 0,
            "weight": weight,
            "rrf_k": settings.rrf_k,
            "sweep": sweep,
            "rrf_k_sweep": rrf_k_sweep,
            "rerank": rerank_record,
        },
        "examples": examples,
    }
    return result, blend, settings
