"""Evaluating every candidate source the same way and choosing the blend on validation, as pure functions.

A source is a mapping item -> ranked [(candidate, score)]; the Pin2Vec source is what the pushed ScaNN index
answers, so the figures are what users get. The blend is either weighted RRF or the learned reranker
(rerank_lib). Both are fitted on the `rerank` queries (transitions held out before each user's validation
one), so their validation figures are out of sample and compare them fairly; validation then chooses the
reranker's L2, RRF or reranker, and the best source. The test queries are reported, never tuned on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

from components.related_evaluator import blend_lib, metrics_lib, rerank_lib
from components.related_evaluator.metrics_lib import Query

Lists = Mapping[str, Sequence[tuple[str, float]]]
SOURCES = ("pin2vec", "cooccurrence", "blend")


def answer_from(lists: Lists):
    """Adapts item -> ranked list into the `answer(items, k)` callable the metrics take."""

    def answer(items: Sequence[str], k: int) -> list[list[str]]:
        return [[c for c, _ in (lists.get(item) or [])[:k]] for item in items]

    return answer


def blend_all(
    items: Sequence[str],
    embedding: Lists,
    cooccurrence: Lists,
    popularity: Mapping[str, int],
    weight: float,
    settings: blend_lib.BlendSettings,
) -> dict[str, list[tuple[str, float]]]:
    return {
        item: blend_lib.blend_item(
            embedding.get(item), cooccurrence.get(item), popularity.get(item, 0), weight, settings
        )
        for item in items
    }


def choose_blend_weight(
    validation: Sequence[Query],
    embedding: Lists,
    cooccurrence: Lists,
    popularity: Mapping[str, int],
    settings: blend_lib.BlendSettings,
) -> tuple[float, list[dict]]:
    """The grid weight with the best validation HR@10 (then MRR@10; then the lower weight, for stability)."""
    items = sorted({q.item for q in validation})
    sweep = []
    for weight in settings.weights:
        lists = blend_all(items, embedding, cooccurrence, popularity, weight, settings)
        ranks = [
            metrics_lib.target_rank([c for c, _ in lists[q.item] if c != q.item], q.target)
            for q in validation
        ]
        sweep.append(
            {
                "weight": weight,
                "hit_rate_at_10": metrics_lib.hit_rate(ranks, 10),
                "mrr_at_10": metrics_lib.mean_reciprocal_rank(ranks, 10),
            }
        )
    best = max(sweep, key=lambda s: (round(s["hit_rate_at_10"], 9), round(s["mrr_at_10"], 9), -s["weight"]))
    return best["weight"], sweep


def choose_blend(
    validation: Sequence[Query],
    embedding: Lists,
    cooccurrence: Lists,
    popularity: Mapping[str, int],
    settings: blend_lib.BlendSettings,
) -> tuple[blend_lib.BlendSettings, float, list[dict], list[dict]]:
    """The fusion constant and weight with the best validation HR@10 (then MRR@10; then the smaller constant).

    Returns (settings with the chosen rrf_k, weight, that constant's weight sweep, the best of each constant).
    """
    per_k = []
    for rrf_k in settings.rrf_ks or (settings.rrf_k,):
        candidate = dataclasses.replace(settings, rrf_k=rrf_k)
        weight, sweep = choose_blend_weight(validation, embedding, cooccurrence, popularity, candidate)
        best = next(s for s in sweep if s["weight"] == weight)
        per_k.append((candidate, weight, sweep, {"rrf_k": rrf_k, **best}))
    chosen = max(
        per_k,
        key=lambda c: (round(c[3]["hit_rate_at_10"], 9), round(c[3]["mrr_at_10"], 9), -c[3]["rrf_k"]),
    )
    return chosen[0], chosen[1], chosen[2], [c[3] for c in per_k]


def choose_reranker(
    training: Sequence[Query],
    validation: Sequence[Query],
    rrf_validation_hit_rate: float,
    rerank_inputs: rerank_lib.RerankInputs,
    rerank_settings: rerank_lib.RerankSettings,
) -> tuple[rerank_lib.RerankModel | None, dict]:
    """The reranker when its validation HR@10 beats the RRF blend's (ties keep RRF, the simpler); returns
    (the model or None, the record of the comparison for evaluation.json)."""
    choice = rerank_lib.choose_reranker(training, validation, rerank_inputs, rerank_settings)
    record: dict = {"training_queries": choice.training_queries, "sweep": choice.sweep}
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
    splits: Mapping[str, Sequence[Query]],
    sources: Mapping[str, Lists],
    popularity: Mapping[str, int],
    catalogue_size: int,
    ks: Sequence[int] = metrics_lib.DEFAULT_KS,
) -> dict[str, dict[str, dict]]:
    """split -> source -> metrics (see metrics_lib.evaluate_source)."""
    buckets = metrics_lib.popularity_buckets(popularity)
    return {
        split: {
            name: metrics_lib.evaluate_source(queries, answer_from(lists), buckets, catalogue_size, ks)
            for name, lists in sources.items()
        }
        for split, queries in splits.items()
    }


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


def example_items(popularity: Mapping[str, int], per_bucket: int = 2) -> list[tuple[str, str]]:
    """(item, bucket) for the most engaged items of each popularity bucket: the report's examples."""
    buckets = metrics_lib.popularity_buckets(popularity)
    chosen = []
    for bucket in metrics_lib.BUCKETS:
        members = sorted((i for i, b in buckets.items() if b == bucket), key=lambda i: (-popularity[i], i))
        chosen += [(item, bucket) for item in members[:per_bucket]]
    return chosen


def evaluate_sources(
    splits: Mapping[str, Sequence[Query]],
    embedding: Lists,
    cooccurrence: Lists,
    popularity: Mapping[str, int],
    settings: blend_lib.BlendSettings,
    rerank_inputs: rerank_lib.RerankInputs | None = None,
    rerank_settings: rerank_lib.RerankSettings | None = None,
    training: Sequence[Query] = (),
) -> tuple[dict, dict[str, list[tuple[str, float]]], blend_lib.BlendSettings]:
    """The whole evaluation: the blend fitted on `training` (the rerank split) and chosen on
    splits["validation"]; every source measured on every split.

    Without training queries the RRF weight is chosen on validation (its validation figures are then
    in-sample) and there is no reranker; without `rerank_inputs` (or with the reranker disabled) the blend is
    the RRF one. Returns (the evaluation.json dict, the blend's lists for every catalogue item, the chosen
    blend settings).
    """
    tuned_on = "rerank" if training else "validation"
    settings, weight, sweep, rrf_k_sweep = choose_blend(
        training or splits["validation"], embedding, cooccurrence, popularity, settings
    )
    catalogue = sorted(set(embedding) | set(cooccurrence))
    model, rerank_record = None, None
    if training and rerank_inputs is not None and rerank_settings is not None and rerank_settings.enabled:
        validation = splits["validation"]
        items = sorted({q.item for q in validation})
        rrf = {"rrf": blend_all(items, embedding, cooccurrence, popularity, weight, settings)}
        rrf_hit_rate = evaluate_all({"validation": validation}, rrf, popularity, 1)["validation"]["rrf"]
        model, rerank_record = choose_reranker(
            training, validation, rrf_hit_rate["hit_rate"]["10"], rerank_inputs, rerank_settings
        )
    elif rerank_settings is not None and rerank_settings.enabled:
        rerank_record = {"training_queries": 0, "sweep": [], "skipped": "the Examples have no rerank queries"}
    if model is not None:
        blend = rerank_lib.rerank_all(catalogue, rerank_inputs, model, settings.top_n)
    else:
        blend = blend_all(catalogue, embedding, cooccurrence, popularity, weight, settings)
    sources = {"pin2vec": embedding, "cooccurrence": cooccurrence, "blend": blend}
    metrics = evaluate_all(splits, sources, popularity, len(catalogue))
    examples = [
        {
            "item": item,
            "bucket": bucket,
            "popularity": popularity[item],
            "lists": {
                name: [list(c) for c in (lists.get(item) or [])[:10]] for name, lists in sources.items()
            },
        }
        for item, bucket in example_items(popularity)
    ]
    result = {
        "ks": list(metrics_lib.DEFAULT_KS),
        "sources": list(sources),
        "best_source": best_source(metrics["validation"]),
        "validation_out_of_sample": bool(training),
        "catalogue_size": len(catalogue),
        "splits": metrics,
        "blend": {
            "method": "rerank" if model is not None else "rrf",
            "tuned_on": tuned_on,
            "training_queries": len(training),
            "weight": weight,
            "rrf_k": settings.rrf_k,
            "sweep": sweep,
            "rrf_k_sweep": rrf_k_sweep,
            "rerank": rerank_record,
        },
        "examples": examples,
    }
    return result, blend, settings
