"""Settings that keep a large log affordable: statistics of the held-out splits, no duplicate statistics in
Transform, a proportional evaluation share."""

import json

import pytest

from components.session_example_gen.session_settings import EventSource
from pipeline.config import (
    PipelineSettings,
    default_eval_user_share,
    default_statistics_skip_train,
    with_input_size_defaults,
)
from pipeline.pipeline import create_pipeline

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "skip_train", "share"),
    [(0, False, 1.0), (2 * MB, False, 1.0), (32 * MB, True, 1.0), (320 * MB, True, 0.1)],
)
def test_statistics_splits_and_eval_user_share_by_input_size(size, skip_train, share):
    assert default_statistics_skip_train(size) is skip_train
    assert default_eval_user_share(size) == pytest.approx(share)


def test_size_defaults_are_resolved_in_one_place_and_never_override_what_was_set():
    settings = PipelineSettings(source=EventSource(path="events.csv"))
    sized = with_input_size_defaults(settings, 320 * MB, size_eval_user_share=True)
    assert sized.statistics_skip_train is True and sized.sessions.eval_user_share == pytest.approx(0.1)
    given = with_input_size_defaults(
        settings, 320 * MB, size_eval_user_share=False
    )  # --eval-user-share given
    assert given.sessions.eval_user_share == settings.sessions.eval_user_share
    kept = PipelineSettings(source=EventSource(path="events.csv"), statistics_skip_train=False)
    assert with_input_size_defaults(kept, 320 * MB, size_eval_user_share=False).statistics_skip_train is False


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


def test_statistics_can_skip_the_training_pairs(tmp_path):
    components = _components(tmp_path, statistics_skip_train=True)
    assert json.loads(components["StatisticsGen"].exec_properties["exclude_splits"]) == ["train"]


def test_full_statistics_by_default(tmp_path):
    components = _components(tmp_path)
    assert components["StatisticsGen"].exec_properties["stats_options_json"] is None
    assert json.loads(components["StatisticsGen"].exec_properties["exclude_splits"]) == []


def test_transform_only_analyses_and_the_trainer_reads_the_raw_pairs(tmp_path):
    components = _components(tmp_path)
    transform, trainer = components["Transform"], components["Trainer"]
    assert "transformed_examples" not in transform.outputs
    assert json.loads(transform.exec_properties["splits_config"]) == {"analyze": ["train"]}
    assert trainer.inputs["examples"].producer_component_id == "SessionExampleGen"
    assert trainer.inputs["transform_graph"].producer_component_id == "Transform"
