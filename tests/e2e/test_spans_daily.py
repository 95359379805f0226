"""Daily spans through real TFX: a 3-day synthetic log read with a 2-day rolling range, rerun unchanged (the
cache answers), then after a 4th day arrives (the window moves and SessionExampleGen reruns).

Only SessionExampleGen runs, under LocalDagRunner with a real ML Metadata store: what is under test is the
driver that resolves the spans before TFX's cache lookup, and what the Examples artifact records; the rest
of the pipeline consumes the Examples as it always has (tests/e2e/test_pipeline_local.py).
"""

import os

import pytest
from ml_metadata import metadata_store
from tfx import v1 as tfx

from components.session_example_gen.component import SessionExampleGen
from components.session_example_gen.session_settings import EventSource, SessionSettings
from components.session_example_gen.spans_lib import rolling_range
from engagement_data.synthetic_daily import DailySettings, generate_daily
from pipeline.config import RunSettings
from pipeline.local_runner import _KnownRunIdRunner
from pipeline.metadata import connection_config, custom_value
from pipeline.report import span_lines
from pipeline.summary import summarize_run

pytestmark = pytest.mark.e2e

DAYS = DailySettings(days=3, items=120, events_per_day=1500, new_items_per_day=4, seed=7)


def _run(log_pattern: str, run: RunSettings, run_id: str):
    example_gen = SessionExampleGen(
        source=EventSource(path=log_pattern),
        settings=SessionSettings(min_count=2),
        range_config=rolling_range(2),
    )
    pipeline = tfx.dsl.Pipeline(
        pipeline_name=run.pipeline_name,
        pipeline_root=run.pipeline_root,
        components=[example_gen],
        enable_cache=True,
        metadata_connection_config=connection_config(run),
        beam_pipeline_args=["--runner=DirectRunner"],
    )
    _KnownRunIdRunner(run_id).run(pipeline)
    return summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root, run_id=run_id)


def _examples(run: RunSettings):
    store = metadata_store.MetadataStore(connection_config(run))
    return sorted(store.get_artifacts_by_type("Examples"), key=lambda a: a.id)


@pytest.fixture(scope="module")
def daily_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    logs = str(root / "logs")
    log = generate_daily(DAYS, logs)
    run = RunSettings(output_dir=str(root / "out"))
    first = _run(log.pattern, run, "run-1")
    again = _run(log.pattern, run, "run-2")  # nothing new arrived
    generate_daily(DailySettings(**{**DAYS.__dict__, "days": 4}), logs)  # the 4th day lands
    after = _run(log.pattern, run, "run-3")
    return run, first, again, after


def test_the_examples_artifact_records_the_spans_read(daily_runs):
    run, first, _, _ = daily_runs
    examples = _examples(run)[0]
    assert examples.properties["span"].int_value == 19725  # 2024-01-03: days since 1970-01-01, as TFX counts
    assert custom_value(examples, "span_labels") == "2024-01-02,2024-01-03"
    assert custom_value(examples, "spans") == "19724,19725"
    assert custom_value(examples, "missing_spans") == ""
    assert custom_value(examples, "input_files") == 2
    assert first.spans == ["2024-01-02", "2024-01-03"]
    assert first.examples["pairs_train"] > 0


def test_the_summary_says_which_spans_it_read(daily_runs):
    _, first, _, _ = daily_runs
    lines = span_lines(first)
    assert lines[0].startswith("  spans read: 2 (2024-01-02, 2024-01-03) of ")
    assert lines[0].endswith(os.path.join("logs", "{YYYY}-{MM}-{DD}", "*.parquet"))
    assert len(lines) == 1  # nothing missing in the window
    assert "2024-01-01" not in lines[0]  # outside the 2-day window


def test_an_unchanged_window_is_answered_from_the_cache(daily_runs):
    run, first, again, _ = daily_runs
    assert again.spans == first.spans
    assert len(_examples(run)) == 2  # the first run's, and the 4th day's: the rerun made none


def test_a_new_day_moves_the_window_and_reruns(daily_runs):
    run, _, _, after = daily_runs
    assert after.spans == ["2024-01-03", "2024-01-04"]
    newest = _examples(run)[-1]
    assert newest.properties["span"].int_value == 19726
    assert custom_value(newest, "input_fingerprint") != custom_value(_examples(run)[0], "input_fingerprint")
    assert after.examples["events_read"] == 2 * DAYS.events_per_day
