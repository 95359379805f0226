"""Warm start through the real pipeline on tiny data: a new day's log starts from the last blessed model,
its items' rows carried over by id, with the counts on the Model artifact in ML Metadata; `cold_start`
(--cold-start) retrains from scratch; a rerun on unchanged logs still comes from the cache."""

import dataclasses

import pytest

from components.scann_indexer.index_lib import IndexSettings
from components.session_example_gen.session_settings import EventSource, SessionSettings
from pipeline.config import PipelineSettings, RunSettings
from pipeline.local_runner import run_local
from pipeline.metadata import connection_config
from pipeline.summary import summarize_run
from tests.e2e.tiny_log import write_tiny_log
from trainer_module.model import TrainerSettings

pytestmark = pytest.mark.e2e

RENAMED = 10  # items i0..i9 vanish from the second day's log; n0..n9 appear in their place


def _next_day(first_log, path):
    """The first log with items i0..i9 renamed n0..n9: 10 vanished items, 10 new ones, the rest known."""
    lines = first_log.read_text().splitlines()
    renamed = [lines[0]]
    for line in lines[1:]:
        user, item, *rest = line.split("\t")
        if int(item[1:]) < RENAMED:
            item = f"n{item[1:]}"
        renamed.append("\t".join([user, item, *rest]))
    path.write_text("\n".join(renamed) + "\n")


def _model_start(run, result):
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root, result["run_id"])
    return summary, {name: cached for name, _, cached in result["components"]}


def test_a_new_days_run_is_warm_cold_start_is_one_flag_away_and_reruns_stay_cached(tmp_path):
    first_log, second_log = tmp_path / "day1.tsv", tmp_path / "day2.tsv"
    write_tiny_log(first_log)
    _next_day(first_log, second_log)
    settings = PipelineSettings(
        source=EventSource(path=str(first_log)),
        sessions=SessionSettings(min_count=3),
        trainer=TrainerSettings(embedding_dim=16, num_negatives=8, epochs=3, warm_epochs=1, batch_size=64),
        index=IndexSettings(min_recall=0.5),
        statistics_skip_train=True,
    )
    run = RunSettings(output_dir=str(tmp_path / "out"), beam_args=("--runner=DirectRunner",))

    first, _ = _model_start(run, run_local(settings, run))
    assert first.blessed and first.warm_start is False
    vocabulary = first.items_new
    assert vocabulary == 120  # every item of the tiny log: all new on a cold start

    next_day = dataclasses.replace(settings, source=EventSource(path=str(second_log)))
    second, components = _model_start(run, run_local(next_day, run))
    assert not components["Trainer"]
    assert second.warm_start is True, second.warm_start_note
    assert second.warm_start_base_model == first.model_dir.rsplit("/", 1)[0]
    assert (second.items_carried_over, second.items_new, second.items_dropped) == (
        vocabulary - RENAMED,
        RENAMED,
        RENAMED,
    )
    assert second.metrics["hit_rate_at_10"] > 0.05  # one warm epoch keeps what three cold ones learnt

    # The same day again: the base model is still the first day's (the second was trained on these
    # examples), so the Trainer's inputs are unchanged and it comes from the cache.
    _, components = _model_start(run, run_local(next_day, run))
    assert components["Trainer"] and components["SessionExampleGen"]

    cold, components = _model_start(run, run_local(dataclasses.replace(next_day, cold_start=True), run))
    assert not components["Trainer"]
    assert cold.warm_start is False and cold.items_carried_over == 0 and cold.items_new == vocabulary
    assert cold.warm_start_base_model == ""
