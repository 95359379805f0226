"""What the RelatedPusher publishes, as pure functions: the model gate and the indexes' recall gates decide
whether the network's models go out; sources that do not depend on the network go out either way.

TF Serving's rule holds: a model the Evaluator did not bless (and anything built from it: its indexes, the
blend of its lists) is never served. Co-occurrence, board co-occurrence and the evaluation do not come from
the model, so a failed model gate does not throw them away: the run pushes them, and serving falls back to
the best of them on the validation queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from formats import serving_layout

# Models built from the trained network: pushed only when it and its indexes passed their gates.
MODEL_DEPENDENT = (
    serving_layout.EMBEDDING_MODEL,
    serving_layout.PIN2VEC_SIMILAR_MODEL,
    serving_layout.PIN2VEC_MODEL,
    serving_layout.BLEND_MODEL,
)


def refusal_reasons(
    model_blessed: bool, index_blessed: bool, index_recall: float, index_name: str = "ScaNN"
) -> list[str]:
    """Why a model/index pair must not be pushed; empty when it may be."""
    reasons = []
    if not model_blessed:
        reasons.append("the Evaluator did not bless the model (metric or change threshold failed)")
    if not index_blessed:
        reasons.append(
            f"the {index_name} index recall@k {index_recall:.3f} is under the indexer's min_recall"
        )
    return reasons


def models_to_push(available: Iterable[str], refused: bool) -> list[str]:
    """The available models that go out: all of them, or, when the network was refused, those that do not
    depend on it, provided at least one of them is a candidate source (an evaluation alone serves nobody) and
    the evaluation goes with them (it records which source serving falls back to)."""
    available = list(available)
    if not refused:
        return available
    kept = [name for name in available if name not in MODEL_DEPENDENT]
    sources = set(serving_layout.SOURCE_MODELS.values())
    if serving_layout.EVALUATION_MODEL not in kept or not any(name in sources for name in kept):
        return []
    return kept


def default_source(evaluation: Mapping | None, pushed_models: Iterable[str]) -> str | None:
    """The source serving answers from by default: the evaluation's best source when it was pushed, else
    the pushed source with the best validation HR@10 (ties: the evaluation's source order); None when no
    source was pushed."""
    pushed = set(pushed_models)
    available = [s for s, model in serving_layout.SOURCE_MODELS.items() if model in pushed]
    if not available:
        return None
    if not evaluation:
        return available[0]
    if evaluation.get("best_source") in available:
        return evaluation["best_source"]
    validation = evaluation.get("splits", {}).get("validation", {})
    order = {name: i for i, name in enumerate(evaluation.get("sources", available))}
    scored = [s for s in available if s in validation]
    if not scored:
        return available[0]
    return max(scored, key=lambda s: (validation[s]["hit_rate"]["10"], -order.get(s, len(order))))
