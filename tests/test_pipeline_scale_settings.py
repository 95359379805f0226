"""Settings that keep a large log affordable: sampled statistics, no duplicate statistics in Transform."""

import json

import pytest

from components.session_example_gen.sessions_lib import EventSource
from pipeline.config import PipelineSettings, default_eval_user_share, default_statistics_sample_rate
from pipeline.pipeline import create_pipeline

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "rate", "share"),
    [(0, 1.0, 1.0), (2 * MB, 1.0, 1.0), (32 * MB, 0.25, 1.0), (320 * MB, 0.025, 0.1)],
)
def test_statistics_sample_rate_and_eval_user_share_by_input_size(size, rate, share):
    assert default_statistics_sample_rate(size) == pytest.approx(rate)
    assert default_eval_user_share(size) == pytest.approx(share)


def _components(tmp_path, **settings):
    pipeline = create_pipeline(
        "p",
        str(tmp_path / "root"),
        PipelineSettings(source=EventSource(path="events.csv"), **settings),
        "serving",
        input_fingerprint="fixed",
    )
    return {c.id: c for c in pipeline.components}


def test_statistics_are_sampled_when_asked_and_transform_skips_its_own(tmp_path):
    components = _components(tmp_path, statistics_sample_rate=0.25)
    options = json.loads(components["StatisticsGen"].exec_properties["stats_options_json"])
    assert options["_sample_rate"] == pytest.approx(0.25)
    assert components["Transform"].exec_properties["disable_statistics"] in (True, 1)


def test_full_statistics_by_default(tmp_path):
    components = _components(tmp_path)
    assert components["StatisticsGen"].exec_properties["stats_options_json"] is None
