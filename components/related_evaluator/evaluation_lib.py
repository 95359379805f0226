"""Evaluating every candidate source the same way and choosing the blend on validation, as pure functions.

A source is a mapping item -> ranked [(candidate, score)]; the Pin2Vec source is what the pushed ScaNN index
answers, so the figures are what users get. The blend weight is chosen on the validation queries only; the
test queries are reported, never tuned on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from components.related_evaluator import blend_lib, metrics_lib
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
) -> tuple[dict, dict[str, list[tuple[str, float]]], blend_lib.BlendSettings]:
    """The whole evaluation: blend chosen on splits["validation"], every source measured on every split.

    Returns (the evaluation.json dict, the blend's lists for every catalogue item, the chosen blend settings).
    """
    settings, weight, sweep, rrf_k_sweep = choose_blend(
        splits["validation"], embedding, cooccurrence, popularity, settings
    )
    catalogue = sorted(set(embedding) | set(cooccurrence))
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
        "catalogue_size": len(catalogue),
        "splits": metrics,
        "blend": {"weight": weight, "rrf_k": settings.rrf_k, "sweep": sweep, "rrf_k_sweep": rrf_k_sweep},
        "examples": examples,
    }
    return result, blend, settings
