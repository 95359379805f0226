"""What the RelatedPusher publishes, as pure functions: the model gate and the indexes' recall gates decide
whether the network's models go out; sources that do not depend on the network go out either way.

TF Serving's rule holds: a model the Evaluator did not bless (and anything built from it: its indexes, the
blend of its lists) is never served. Co-occurrence, board co-occurrence and the evaluation do not come from
the model, so a failed model gate does not throw them away: the run pushes them, and serving falls back to
the best of them on the validation queries.

One more gate, off by default (`PushSettings.min_neighbour_overlap`, `--min-neighbour-overlap`): when the
related lists of the source serving would answer from keep less than that share of the served version's
(overlap@10, evaluation.json's `stability`), the whole push is refused and the served version stays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from formats import evaluation_result, serving_layout

MIN_OVERLAP_FLAG = "--min-neighbour-overlap"


@dataclass(frozen=True)
class PushSettings:
    """The pusher's own gates, beyond the Evaluator's and the indexes'."""

    # Refuse the whole push when the default source's overlap@10 with the served version is below this
    # (0..1; above 1 refuses every push once something is served). None: off.
    min_neighbour_overlap: float | None = None

    def __post_init__(self) -> None:
        value = self.min_neighbour_overlap
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < 0:
            raise ValueError(f"{MIN_OVERLAP_FLAG} must be a number >= 0 (a share, e.g. 0.7); got {value!r}")


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


def neighbour_overlap_refusal(
    evaluation: Mapping | None, default_source: str | None, settings: PushSettings
) -> str | None:
    """Why the whole push is refused by the neighbour-stability gate, or None when it may go out: the gate is
    off, nothing is served yet, or the overlap of `default_source` (what serving would answer from) with the
    served version is at least the threshold. Not measurable (nothing to compare with) passes."""
    threshold = settings.min_neighbour_overlap
    if threshold is None or not evaluation or default_source is None:
        return None
    figure = evaluation_result.neighbour_overlap(dict(evaluation), default_source)
    if figure.overlap_at_10 is None or figure.overlap_at_10 >= threshold:
        return None
    return (
        f"neighbour overlap@10 of {default_source} with the served version {figure.served_version} is "
        f"{figure.overlap_at_10:.3f}, below {MIN_OVERLAP_FLAG} {threshold:g}: the whole push is refused and "
        f"serving keeps version {figure.served_version} (rerun with a lower {MIN_OVERLAP_FLAG}, or without "
        "it, to accept this reshuffle)"
    )
