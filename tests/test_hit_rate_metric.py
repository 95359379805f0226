"""The Evaluator's HR@k: pure functions on hand-made rows, and the combiner run by Beam as TFMA runs it."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that
from tensorflow_model_analysis.metrics import metric_types

from pipeline.hit_rate_metric import HitRateAtK, is_hit, top_rows
from trainer_module import features


def test_ranked_rows_are_read_in_order():
    assert top_rows(np.array([7, 3, 9, 1], np.int64), 2).tolist() == [7, 3]
    assert is_hit(np.array([3]), np.array([7, 3, 9]), 2)
    assert not is_hit(np.array([9]), np.array([7, 3, 9]), 2)
    assert is_hit(np.array([[9]]), np.array([[7, 3, 9]]), 10)  # k beyond the rows given: all of them


def test_older_models_scores_are_ranked_best_first():
    scores = np.array([0.1, 0.9, -1e9, 0.5, 0.7], np.float32)
    assert top_rows(scores, 3).tolist() == [1, 4, 3]
    assert top_rows(scores, 10).tolist() == [1, 4, 3, 0, 2]
    assert is_hit(np.array([4]), scores, 2) and not is_hit(np.array([3]), scores, 2)


def test_more_than_one_label_is_refused():
    with pytest.raises(ValueError, match="one label row per example, got 2"):
        is_hit(np.array([1, 2]), np.array([1, 2, 3]), 2)


def test_k_below_one_is_refused():
    with pytest.raises(ValueError, match="k must be at least 1"):
        HitRateAtK(k=0)


def _check_in_beam(metric: HitRateAtK, inputs: list, expected: dict[str, float], model_names=("",)) -> None:
    """Runs each computation's combiner over `inputs` in a Beam pipeline and checks {model name: value}."""
    computations = metric.computations(model_names=list(model_names), output_names=[""])
    assert len(computations) == len(model_names)

    def check(outputs):
        values = {key.model_name: value for output in outputs for key, value in output.items()}
        assert values == pytest.approx(expected), values

    with beam.Pipeline() as pipeline:
        outputs = [
            pipeline
            | f"Create{number}" >> beam.Create(inputs)
            | f"Combine{number}" >> beam.CombineGlobally(computation.combiner)
            for number, computation in enumerate(computations)
        ]
        assert_that(outputs | beam.Flatten(), check)


def test_combiner_counts_hits_over_examples_in_beam():
    inputs = [
        metric_types.StandardMetricInputs(
            labels=np.array([label]), predictions={features.SCORING_OUTPUT: np.array(rows, np.int64)}
        )
        for label, rows in [(5, [5, 1, 2]), (2, [0, 1, 2]), (9, [0, 1, 2]), (1, [1, 0, 2])]
    ]
    _check_in_beam(HitRateAtK(k=2), inputs, {"": 0.5})
    _check_in_beam(HitRateAtK(k=3), inputs, {"": 0.75})


def test_candidate_and_an_older_baseline_with_full_scores_are_scored_alike():
    """The gate compares against the last blessed model, which may predate the ranked output."""
    labels = [2, 0, 3]
    candidate_rows = [[2, 1], [1, 3], [3, 0]]
    baseline_scores = [[0.1, 0.2, 0.9, 0.0], [0.8, 0.1, 0.0, 0.5], [0.9, 0.0, 0.1, 0.2]]
    inputs = [
        metric_types.StandardMetricInputs(
            labels={"candidate": np.array([label]), "baseline": np.array([label])},
            predictions={
                "candidate": {features.SCORING_OUTPUT: np.array(rows, np.int64)},
                "baseline": {features.LEGACY_SCORING_OUTPUT: np.array(scores, np.float32)},
            },
        )
        for label, rows, scores in zip(labels, candidate_rows, baseline_scores, strict=True)
    ]
    expected = {"candidate": 2 / 3, "baseline": 2 / 3}
    _check_in_beam(HitRateAtK(k=1), inputs, expected, model_names=("candidate", "baseline"))


def test_unknown_signature_outputs_are_named_in_the_error():
    inputs = [metric_types.StandardMetricInputs(labels=np.array([1]), predictions={"logits": np.zeros(3)})]
    with pytest.raises(Exception, match="returned \\['logits'\\], expected 'top_items'"):
        _check_in_beam(HitRateAtK(k=1), inputs, {})
