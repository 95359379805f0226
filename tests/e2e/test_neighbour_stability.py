"""Neighbour stability end to end on tiny data: a second run on the same output directory is compared with the
version the first one pushed, and an impossible --min-neighbour-overlap keeps that version serving alone."""

import dataclasses
import json
import os

import pytest

from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.related_pusher.push_policy import PushSettings
from components.scann_indexer.index_lib import IndexSettings
from components.session_example_gen.session_settings import EventSource, SessionSettings
from formats import push_records, serving_layout
from pipeline.config import PipelineSettings, RunSettings
from pipeline.local_runner import run_local
from pipeline.metadata import connection_config
from pipeline.report import stability_lines
from pipeline.summary import summarize_run
from tests.e2e.tiny_log import write_tiny_log
from trainer_module.model import TrainerSettings

pytestmark = pytest.mark.e2e


def _served(serving_dir: str) -> dict[str, list[str]]:
    return {
        model: sorted(os.listdir(os.path.join(serving_dir, model)))
        for model in serving_layout.MODELS
        if os.path.isdir(os.path.join(serving_dir, model))
    }


def test_a_rerun_is_compared_with_the_served_version_and_the_gate_holds_a_reshuffle_back(tmp_path):
    log = tmp_path / "events.tsv"
    write_tiny_log(log)
    settings = PipelineSettings(
        source=EventSource(path=str(log)),
        sessions=SessionSettings(min_count=3),
        trainer=TrainerSettings(embedding_dim=16, num_negatives=8, epochs=3, batch_size=64),
        index=IndexSettings(min_recall=0.5),
    )
    run = RunSettings(output_dir=str(tmp_path / "out"), beam_args=("--runner=DirectRunner",))
    config = connection_config(run)

    first = run_local(settings, run)
    summary = summarize_run(config, run.pipeline_name, run.pipeline_root, run_id=first["run_id"])
    assert summary.pushed_version is not None
    assert summary.stability["overlap_at_10"] is None and "nothing was served" in summary.stability["reason"]
    served_before = _served(run.serving_dir)
    assert all(versions == [str(summary.pushed_version)] for versions in served_before.values())

    # A changed co-occurrence setting: new co-occurrence and blend lists from the same model, so a new
    # version, held back by a threshold no version can meet.
    changed = dataclasses.replace(
        settings,
        cooccurrence=CooccurrenceSettings(popularity_exponent=0.75),
        push=PushSettings(min_neighbour_overlap=1.01),
    )
    second = run_local(changed, run)
    summary = summarize_run(config, run.pipeline_name, run.pipeline_root, run_id=second["run_id"])
    stability = summary.stability
    assert stability["served_version"] == int(served_before["evaluation"][0])
    assert 0.0 <= stability["overlap_at_10"] <= 1.0 and stability["items"] > 0
    assert set(stability["buckets"]) == {"head", "torso", "tail"}
    assert sum(b["items"] for b in stability["buckets"].values()) == stability["items"]
    for bucket in stability["buckets"].values():
        assert bucket["overlap_at_10"] is None or 0.0 <= bucket["overlap_at_10"] <= 1.0
    sources = stability["sources"]
    assert {"pin2vec", "pin2vec_similar", "cooccurrence", "blend"} <= set(sources)
    # The model and its indexes came from the cache: the served indexes are the candidate's, list for list.
    assert sources["pin2vec"]["overlap_at_10"] == sources["pin2vec_similar"]["overlap_at_10"] == 1.0
    assert 0.0 <= sources["cooccurrence"]["overlap_at_10"] <= 1.0
    assert stability_lines(stability)[0].startswith("Neighbour stability (overlap@10")
    with open(os.path.join(os.path.dirname(summary.report_html), "evaluation.json")) as f:
        assert json.load(f)["stability"] == stability

    # The whole push was refused, naming the flag, the figure and the threshold; version 1 serves alone.
    assert summary.pushed_version is None
    assert "--min-neighbour-overlap 1.01" in summary.not_pushed_reason
    assert f"{stability['overlap_at_10']:.3f}" in summary.not_pushed_reason
    assert _served(run.serving_dir) == served_before
    assert list(push_records.committed(run.serving_dir)) == [int(served_before["evaluation"][0])]
