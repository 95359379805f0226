"""The cost-curve bench's own arithmetic and table (the runs themselves are the bench)."""

import argparse

import psutil
import pytest

from bench import bench_scale


def test_counts_and_cases_parse():
    assert bench_scale.parse_count("20M") == 20_000_000
    assert bench_scale.parse_count("100k") == 100_000
    assert bench_scale.parse_count("1.5M") == 1_500_000
    assert bench_scale.parse_case("5M:1M") == (5_000_000, 1_000_000, None)
    assert bench_scale.parse_case("20M:1M:1") == (20_000_000, 1_000_000, 1)
    for bad in ("5M", "5M:1M:1:1"):
        with pytest.raises(argparse.ArgumentTypeError, match="EVENTS:ITEMS"):
            bench_scale.parse_case(bad)


def test_log_slope_reads_linear_and_quadratic_costs():
    assert bench_scale.log_slope([(1, 10), (2, 20), (4, 40)]) == pytest.approx(1.0)
    assert bench_scale.log_slope([(1, 3), (10, 300)]) == pytest.approx(2.0)
    assert bench_scale.log_slope([(5, 1), (5, 2)]) is None


def test_tree_rss_counts_this_process():
    assert bench_scale.tree_rss(psutil.Process()) >= psutil.Process().memory_info().rss


def test_report_has_a_row_per_case_stage_columns_and_slopes():
    def result(events, seconds):
        stages = {
            "SessionExampleGen": {"seconds": seconds / 2, "peak_bytes": 2e9},
            "Pusher": {"seconds": 0.2},
        }
        run = {"seconds": seconds, "peak_bytes": 3e9, "stages": stages}
        return {
            "events": events,
            "items": 100_000,
            "floor_s": 2.0,
            "run": run,
            "pairs_train": events,
            "commit": "abc1234",
        }

    args = argparse.Namespace(case=["1M:100K", "2M:100K"], repeat=1)
    text = bench_scale.report(args, [result(1_000_000, 100), result(2_000_000, 200)])
    rows = [
        line for line in text.splitlines() if line.startswith("| 1,000,000") or line.startswith("| 2,000,000")
    ]
    assert len(rows) == 2
    assert "SessionExampleGen s (GB)" in text and "Pusher" not in text  # stages under a second are left out
    assert "| 50x |" in rows[0] and "3.00" in rows[0] and "| abc1234 |" in rows[0]
    assert "slope 1.00" in text


def test_repeated_runs_report_medians_and_the_highest_peak():
    def run(seconds, peak, commit):
        stages = {"Trainer": {"seconds": seconds / 2, "peak_bytes": peak}}
        return {"seconds": seconds, "peak_bytes": peak, "stages": stages, "commit": commit}

    repeated = {
        "events": 1_000_000,
        "items": 100_000,
        "floor_s": 1.0,
        "pairs_train": 10,
        "runs": [run(100, 2e9, "aaaaaaa"), run(300, 4e9, "aaaaaaa"), run(120, 3e9, "bbbbbbb")],
    }
    legacy = {  # written before --repeat: one "run", the commit on the case
        "events": 2_000_000,
        "items": 100_000,
        "floor_s": 1.0,
        "pairs_train": 20,
        "run": {"seconds": 240, "peak_bytes": 1e9, "stages": {}},
        "commit": "ccccccc",
    }
    median = bench_scale.median_run(bench_scale.runs_of(repeated))
    assert median["seconds"] == 120 and median["peak_bytes"] == 4e9
    assert median["stages"]["Trainer"] == {"seconds": 60, "peak_bytes": 4e9}

    args = argparse.Namespace(case=["1M:100K", "2M:100K"], repeat=3)
    text = bench_scale.report(args, [repeated, legacy])
    first, second = (
        line for line in text.splitlines() if line.startswith("| 1,000,000") or line.startswith("| 2,000,000")
    )
    assert "| aaaaaaa, bbbbbbb | 10 | 120 | 100 / 300 / 120 |" in first and "| 4.00 |" in first
    assert "| ccccccc | 20 | 240 | 240 |" in second
    assert "slope 1.00" in text  # medians 120 -> 240 for twice the events
    assert "Peak memory against events at 100,000 items: slope -2.00." in text  # highest peak 4 GB -> 1 GB


def test_the_measured_commit_is_named():
    commit = bench_scale.current_commit()
    assert commit == "?" or (
        len(commit.rstrip("+")) >= 7 and all(c in "0123456789abcdef" for c in commit.rstrip("+"))
    )
