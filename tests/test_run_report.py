"""The end-of-run summary a person reads: the gate's decision next to the noise that can explain it."""

import io
import json
import pathlib

import pytest

from pipeline.config import RunSettings
from pipeline.report import noise_hint, print_summary, related_lines
from pipeline.summary import RunSummary


def _summary(change: float | None, blessed: bool, queries: float = 943.0) -> RunSummary:
    changes = {} if change is None else {"hit_rate_at_10": change}
    metrics = {"hit_rate_at_10": 0.1082, "example_count": queries}
    return RunSummary(
        metrics=metrics, metric_changes=changes, blessed=blessed, not_pushed_reason="not blessed"
    )


def test_a_drop_within_noise_is_explained_with_the_flag_that_accepts_it():
    hint = noise_hint(_summary(-0.0053, blessed=False))
    # sqrt(0.1082 * 0.8918 / 943) = 0.0101
    assert "0.0053 below" in hint and "within one standard error (0.0101 on 943" in hint
    assert "--max-hit-rate-drop 0.01" in hint


def test_a_drop_beyond_noise_says_so():
    hint = noise_hint(_summary(-0.0412, blessed=False))
    assert "beyond one standard error" in hint and "--max-hit-rate-drop 0.05" in hint


@pytest.mark.parametrize(
    "change, blessed, queries",
    [(None, False, 943.0), (0.002, False, 943.0), (-0.004, True, 943.0), (-0.004, False, 0.0)],
)
def test_no_hint_without_a_drop_that_kept_the_model_back(change, blessed, queries):
    assert noise_hint(_summary(change, blessed, queries)) is None


def test_the_printed_summary_carries_the_hint_under_the_gate(tmp_path):
    out = io.StringIO()
    result = {"seconds": 3.0, "components": [], "log_file": str(tmp_path / "run.log")}
    print_summary(_summary(-0.0053, blessed=False), RunSettings(output_dir=str(tmp_path)), result, stream=out)
    text = out.getvalue()
    gate = text.index("blessed: NO")
    assert text.index("within one standard error", gate) < text.index("NOT pushed: not blessed")


def test_related_lines_end_with_the_paired_differences_from_the_best_source():
    fixture = pathlib.Path(__file__).parent / "components" / "data" / "evaluation.json"
    evaluation = json.loads(fixture.read_text(encoding="utf-8"))
    lines = related_lines(evaluation)
    assert lines[-1] == (
        "  HR@10 minus blend's on the same queries, 95% interval: pin2vec -0.051 [-0.072, -0.029]; "
        "cooccurrence -0.022 [-0.041, -0.003]"
    )
    evaluation["comparisons"]["splits"]["test"]["cooccurrence"]["high"] = 0.01
    assert related_lines(evaluation)[-1].endswith("cooccurrence -0.022 [-0.041, +0.010] (within noise)")
