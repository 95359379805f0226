"""Span resolution: TFX patterns ({SPAN}, {YYYY}-{MM}-{DD}, {VERSION}) and rolling ranges over paths."""

import datetime

import pytest
from tfx.proto import range_config_pb2

from components.session_example_gen import spans_lib
from components.session_example_gen.spans_lib import SpanSelection, resolve_spans, rolling_range

DATE_PATTERN = "/logs/{YYYY}-{MM}-{DD}/*.parquet"


def _day(date: str) -> int:
    """TFX's span number of a date: days since 1970-01-01."""
    return (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days


def _daily(*dates: str, shards: int = 1) -> list[str]:
    return [f"/logs/{d}/events-{i}.parquet" for d in dates for i in range(shards)]


def test_a_date_pattern_reads_the_latest_day_by_default_as_tfx_does():
    selection = resolve_spans(DATE_PATTERN, _daily("2024-01-01", "2024-01-02", "2024-01-03"))
    assert selection.spans == (_day("2024-01-03"),)
    assert selection.labels == ("2024-01-03",)
    assert selection.files == ("/logs/2024-01-03/events-0.parquet",)
    assert selection.is_date and selection.version is None and selection.missing == ()


def test_a_rolling_range_reads_the_latest_n_days_with_every_shard():
    paths = _daily("2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", shards=2)
    selection = resolve_spans(DATE_PATTERN, paths, rolling_range(3))
    assert selection.labels == ("2024-01-31", "2024-02-01", "2024-02-02")  # across a month boundary
    assert selection.span == _day("2024-02-02")
    assert len(selection.files) == 6
    assert all("2024-01-30" not in f for f in selection.files)


def test_a_missing_day_inside_the_window_is_skipped_and_named_not_replaced_by_an_older_one():
    paths = _daily("2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05")  # 01-03 never arrived
    selection = resolve_spans(DATE_PATTERN, paths, rolling_range(4))
    assert selection.labels == ("2024-01-02", "2024-01-04", "2024-01-05")
    assert selection.missing_labels == ("2024-01-03",)
    assert "/logs/2024-01-01/events-0.parquet" not in selection.files  # the window stays 4 days long


def test_a_late_arriving_day_moves_the_window():
    before = resolve_spans(DATE_PATTERN, _daily("2024-01-01", "2024-01-02", "2024-01-03"), rolling_range(2))
    after = resolve_spans(
        DATE_PATTERN, _daily("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"), rolling_range(2)
    )
    assert before.labels == ("2024-01-02", "2024-01-03")
    assert after.labels == ("2024-01-03", "2024-01-04")
    assert before.files != after.files


def test_a_span_pattern_with_width_and_versions_reads_each_spans_latest_version():
    pattern = "gs://b/span-{SPAN:3}/v{VERSION}/part-*.csv"
    paths = [
        "gs://b/span-007/v1/part-0.csv",
        "gs://b/span-008/v1/part-0.csv",
        "gs://b/span-008/v2/part-0.csv",
        "gs://b/span-008/v2/part-1.csv",
        "gs://b/span-009/v1/part-0.csv",
        "gs://b/other/part-0.csv",  # not the pattern's: ignored
    ]
    selection = resolve_spans(pattern, paths, rolling_range(2))
    assert selection.spans == (8, 9)
    assert selection.versions == (2, 1)
    assert selection.version == 1  # the newest span's, TFX's `version`
    assert selection.files == (
        "gs://b/span-008/v2/part-0.csv",
        "gs://b/span-008/v2/part-1.csv",
        "gs://b/span-009/v1/part-0.csv",
    )
    assert selection.labels == ("8", "9") and not selection.is_date


def test_start_span_number_clips_the_window_and_a_static_range_reads_exactly_its_spans():
    paths = [f"/d/{s}/x.csv" for s in (1, 2, 3, 4, 5)]
    assert resolve_spans("/d/{SPAN}/x.csv", paths, rolling_range(5, start_span_number=4)).spans == (4, 5)
    static = range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=2, end_span_number=3)
    )
    assert resolve_spans("/d/{SPAN}/x.csv", paths, static).spans == (2, 3)


def test_no_match_is_a_clear_error_naming_the_pattern():
    with pytest.raises(ValueError, match=r"no file matches the pattern '/logs/\{YYYY\}"):
        resolve_spans(DATE_PATTERN, ["/logs/latest/events.parquet"])


def test_tfx_pattern_rules_are_enforced():
    with pytest.raises(ValueError, match="exclusively"):
        resolve_spans("/d/{SPAN}/{YYYY}-{MM}-{DD}/x.csv", [])
    with pytest.raises(ValueError, match="Exactly one of each date spec"):
        resolve_spans("/d/{YYYY}-{MM}/x.csv", [])
    with pytest.raises(ValueError, match="Version spec provided, but Span or Date spec is not present"):
        resolve_spans("/d/x-{VERSION}.csv", [])
    with pytest.raises(ValueError, match=r"no \{SPAN\} or \{YYYY\}"):
        resolve_spans("/d/*.csv", [])


def test_rolling_range_refuses_a_window_under_one():
    with pytest.raises(ValueError, match="--days"):
        rolling_range(0)


def test_pattern_helpers_need_no_tensorflow_and_selection_round_trips_as_json():
    assert spans_lib.has_span_spec(DATE_PATTERN) and spans_lib.has_span_spec("/d/{SPAN:2}/x")
    assert not spans_lib.has_span_spec("/logs/*/events.parquet")
    assert spans_lib.pattern_glob("/d/{SPAN:3}/v{VERSION}/{YYYY}*.csv") == "/d/*/v*/**.csv"
    selection = resolve_spans(DATE_PATTERN, _daily("2024-01-01", "2024-01-03"), rolling_range(3))
    assert SpanSelection.from_json(selection.to_json()) == selection
    config = rolling_range(7)
    assert spans_lib.range_config_from_json(spans_lib.range_config_to_json(config)) == config
    assert spans_lib.range_config_from_json("") is None


def test_resolve_pattern_lists_real_files_and_ignores_marker_files(tmp_path):
    for day in ("2024-03-01", "2024-03-02"):
        (tmp_path / day).mkdir()
        (tmp_path / day / "events.csv").write_text("user_id,item_id,timestamp\nu,i,1\n")
        (tmp_path / day / "_SUCCESS").write_text("")
    pattern = str(tmp_path / "{YYYY}-{MM}-{DD}" / "*")
    selection = spans_lib.resolve_pattern(pattern, rolling_range(5))
    assert selection.labels == ("2024-03-01", "2024-03-02")
    assert [f.rsplit("/", 1)[1] for f in selection.files] == ["events.csv", "events.csv"]
    with pytest.raises(ValueError, match=r"matches directories, not files: end it with /\*"):
        spans_lib.list_pattern_paths(str(tmp_path / "{YYYY}-{MM}-{DD}"))
