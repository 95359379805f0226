"""The end-of-run summary a person reads: the gate's decision next to the noise that can explain it."""

import io
import json
import pathlib

import pytest

from pipeline.config import RunSettings
from pipeline.report import gate_advice, print_summary, related_lines, report_version_note
from pipeline.summary import (
    DROP,
    FLOOR,
    GateFailure,
    RunSummary,
    gate_failures_from_settings,
    read_gate_failures,
)


def _summary(change, blessed, queries=943.0, failures=None) -> RunSummary:
    changes = {} if change is None else {"hit_rate_at_10": change}
    metrics = {"hit_rate_at_10": 0.1082, "example_count": queries}
    return RunSummary(
        metrics=metrics,
        metric_changes=changes,
        blessed=blessed,
        not_pushed_reason="not blessed",
        gate_failures=failures,
    )


FLOOR_FAILED = GateFailure(FLOOR, 0.1082, 0.15)
DROP_FAILED = GateFailure(DROP, -0.0053, 0.0)


def test_floor_failed_only_advises_the_floor_only():
    # The drop (-0.0053) is within a --max-hit-rate-drop of 0.01: only the floor failed.
    lines = gate_advice(_summary(-0.0053, blessed=False, failures=[FLOOR_FAILED]))
    assert lines == [
        "Failed the floor: HR@10 0.1082 is below --min-hit-rate 0.15. Improve the model (more data, epochs, "
        "--embedding-dim), or accept this level with --min-hit-rate 0.1082 or lower."
    ]


def test_drop_failed_only_advises_the_drop_with_the_noise():
    [line] = gate_advice(_summary(-0.0053, blessed=False, failures=[DROP_FAILED]))
    # sqrt(0.1082 * 0.8918 / 943) = 0.0101
    assert line.startswith("Failed the drop check: HR@10 is 0.0053 below the last blessed model's, more ")
    assert "than --max-hit-rate-drop 0 tolerates; within one standard error (0.0101 on 943" in line
    assert line.endswith("rerun with --max-hit-rate-drop 0.01.")
    assert "--min-hit-rate" not in line


def test_both_failed_advises_both_and_says_both_must_pass():
    lines = gate_advice(_summary(-0.0053, blessed=False, failures=[DROP_FAILED, FLOOR_FAILED]))
    assert len(lines) == 3
    assert lines[0].startswith("Failed the floor:") and "--min-hit-rate 0.1082 or lower" in lines[0]
    assert lines[1].startswith("Failed the drop check:") and "--max-hit-rate-drop 0.01." in lines[1]
    assert lines[2] == "Both checks failed: the model passes only when each of them does."


def test_a_drop_beyond_noise_says_so():
    [line] = gate_advice(_summary(-0.0412, False, failures=[GateFailure(DROP, -0.0412, 0.01)]))
    assert "beyond one standard error" in line and "rerun with --max-hit-rate-drop 0.05" in line


@pytest.mark.parametrize(
    "blessed, failures",
    [(True, [DROP_FAILED]), (False, None), (False, [])],
)
def test_no_advice_when_blessed_or_when_the_failed_check_is_unknown(blessed, failures):
    assert gate_advice(_summary(-0.004, blessed, failures=failures)) == []


@pytest.mark.parametrize(
    "hit_rate, change, expected",
    [
        (0.05, -0.005, [FLOOR]),  # below the floor, the drop tolerated
        (0.20, -0.020, [DROP]),
        (0.05, -0.020, [FLOOR, DROP]),
        (0.20, -0.005, []),
        (0.20, None, []),  # no baseline: no drop check
    ],
)
def test_failed_checks_from_the_settings(hit_rate, change, expected):
    changes = {} if change is None else {"hit_rate_at_10": change}
    failures = gate_failures_from_settings({"hit_rate_at_10": hit_rate}, changes, 0.1, 0.01)
    assert [f.check for f in failures] == expected


def test_failed_checks_from_the_evaluators_validation_result(tmp_path):
    import tensorflow as tf
    from tensorflow_model_analysis.proto import validation_result_pb2

    result = validation_result_pb2.ValidationResult(validation_ok=False)
    per_slice = result.metric_validations_per_slice.add()
    floor = per_slice.failures.add()
    floor.metric_key.name = "hit_rate_at_10"
    floor.metric_value.double_value.value = 0.08
    floor.metric_threshold.value_threshold.lower_bound.value = 0.1
    drop = per_slice.failures.add()
    drop.metric_key.name = "hit_rate_at_10"
    drop.metric_key.is_diff = True
    drop.metric_value.double_value.value = -0.03
    drop.metric_threshold.change_threshold.absolute.value = -0.02 - 1e-9
    with tf.io.TFRecordWriter(str(tmp_path / "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())

    failures = read_gate_failures(str(tmp_path))
    assert [(f.check, f.value) for f in failures] == [(FLOOR, 0.08), (DROP, -0.03)]
    assert (failures[0].limit, failures[1].limit) == (0.1, 0.02)
    assert read_gate_failures(str(tmp_path / "missing")) is None


def test_the_printed_summary_carries_the_advice_under_the_gate(tmp_path):
    out = io.StringIO()
    result = {"seconds": 3.0, "components": [], "log_file": str(tmp_path / "run.log")}
    summary = _summary(-0.0053, blessed=False, failures=[DROP_FAILED])
    print_summary(summary, RunSettings(output_dir=str(tmp_path)), result, stream=out)
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


def test_the_summary_names_the_version_the_candidate_report_became():
    assert report_version_note(RunSummary()) == ""  # no report
    written = RunSummary(report_html="/o/report.html")
    assert report_version_note(written) == " (its candidate was not pushed)"
    written.pushed_version = 7
    assert report_version_note(written) == " (its candidate is pushed version 7)"
    written.not_pushed_reason = "not blessed"
    assert report_version_note(written) == (
        " (its candidate is pushed version 7, without the model, which was kept back)"
    )


def test_the_summary_gives_neighbour_stability_or_why_it_was_not_measured():
    from pipeline.report import stability_lines

    assert stability_lines(None) == []
    lines = stability_lines({"overlap_at_10": None, "reason": "nothing was served under /s", "sources": {}})
    assert lines == ["Neighbour stability: not measured (nothing was served under /s)"]
    stability = {
        "source": "blend",
        "served_source": "blend",
        "served_version": 17,
        "pinned_version": 17,
        "overlap_at_10": 0.8125,
        "items": 40,
        "buckets": {
            "head": {"overlap_at_10": 0.9},
            "torso": {"overlap_at_10": None},
            "tail": {"overlap_at_10": 0.7},
        },
        "sources": {"cooccurrence": {"overlap_at_10": 0.5}},
    }
    lines = stability_lines(stability)
    assert "version 17 (pinned by a rollback)" in lines[0] and "blend keeps 0.812 of its lists" in lines[0]
    assert "head/torso/tail 0.900/-/0.700" in lines[0]
    assert lines[1].endswith("cooccurrence 0.500")
