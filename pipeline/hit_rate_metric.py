"""HR@k for the Evaluator's gate, read from the top rows the scoring signature returns.

TFMA's stock top-k metrics want a score for every class: at a million items that is megabytes per query
through Beam. The scoring signature ranks inside the model and returns only its top rows, so this metric
only checks whether the label's row is among the first k.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from trainer_module import features


def top_rows(prediction: np.ndarray, k: int) -> np.ndarray:
    """The first k predicted rows, best first.

    Integer predictions are already rows in rank order. Float predictions are a score per vocabulary row,
    which is what models exported before the signature ranked its own rows return; this keeps them
    usable as the gate's baseline.
    """
    prediction = np.asarray(prediction).reshape(-1)
    if np.issubdtype(prediction.dtype, np.integer):
        return prediction[:k]
    k = min(k, prediction.size)
    best = np.argpartition(-prediction, k - 1)[:k]
    return best[np.argsort(-prediction[best], kind="stable")]


def is_hit(label: np.ndarray, prediction: np.ndarray, k: int) -> bool:
    """Whether the label's row is among the first k predicted rows."""
    label = np.asarray(label).reshape(-1)
    if label.size != 1:
        raise ValueError(f"HR@k wants one label row per example, got {label.size}: {label!r}")
    return bool(np.any(top_rows(prediction, k) == label[0]))


class HitRateAtK(metric_types.Metric):
    """Share of examples whose label row is among the model's top k rows."""

    def __init__(self, k: int = 10, name: str | None = None, code_version: str = ""):
        """`code_version` is unused here: it only keys the Evaluator's cache (components/code_version.py)."""
        if k < 1:
            raise ValueError(f"HitRateAtK: k must be at least 1, got {k}")
        super().__init__(
            metric_util.merge_per_key_computations(_hit_rate), k=k, name=name or f"hit_rate_at_{k}"
        )


def _hit_rate(
    name: str,
    k: int,
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )
    return [metric_types.MetricComputation(keys=[key], preprocessors=None, combiner=_HitRateCombiner(key, k))]


def _by_model(value, model_name: str):
    if model_name and isinstance(value, Mapping) and model_name in value:
        return value[model_name]
    return value


def _prediction_rows(prediction):
    """The scoring output from a signature's outputs: ranked rows, or an older model's per-row scores."""
    if isinstance(prediction, Mapping):
        for key in (features.SCORING_OUTPUT, features.LEGACY_SCORING_OUTPUT):
            if key in prediction:
                return prediction[key]
        raise ValueError(
            f"HitRateAtK: the scoring signature returned {sorted(prediction)}, expected "
            f"{features.SCORING_OUTPUT!r} (or {features.LEGACY_SCORING_OUTPUT!r} from older models)"
        )
    return prediction


class _HitRateCombiner(beam.CombineFn):
    def __init__(self, key: metric_types.MetricKey, k: int):
        self._key = key
        self._k = k

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # weighted hits, weighted examples

    def add_input(self, accumulator: list[float], element: metric_types.StandardMetricInputs) -> list[float]:
        model_name = self._key.model_name
        label = _by_model(element.label, model_name)
        if isinstance(label, Mapping):
            label = label[features.LABEL_INDEX]
        prediction = _prediction_rows(_by_model(element.prediction, model_name))
        weight = 1.0
        if self._key.example_weighted and element.example_weight is not None:
            weight = float(metric_util.safe_to_scalar(_by_model(element.example_weight, model_name)))
        accumulator[0] += weight * is_hit(label, prediction, self._k)
        accumulator[1] += weight
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[float]]) -> list[float]:
        hits, examples = 0.0, 0.0
        for accumulator_hits, accumulator_examples in accumulators:
            hits += accumulator_hits
            examples += accumulator_examples
        return [hits, examples]

    def extract_output(self, accumulator: list[float]) -> dict[metric_types.MetricKey, float]:
        hits, examples = accumulator
        return {self._key: hits / examples if examples else float("nan")}
