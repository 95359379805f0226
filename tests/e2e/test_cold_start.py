"""Cold start end to end on tiny data: every item engaged in the window gets an answer (100% coverage in
evaluation.json), items under min_count and an item engaged alone included, through the CLI and REST."""

import json

import pytest
import requests

from components.scann_indexer.index_lib import IndexSettings
from components.session_example_gen.session_settings import EventSource, SessionSettings
from pipeline import cli
from pipeline.config import PipelineSettings, RunSettings
from pipeline.local_runner import run_local
from pipeline.metadata import connection_config
from pipeline.summary import summarize_run
from tests.e2e.tiny_log import write_tiny_log
from tests.serving.conftest import running_server
from trainer_module.model import TrainerSettings

pytestmark = pytest.mark.e2e

# Added today: a user who engages two new items once each (under min_count=3), and one who engages a new
# item alone (no co-occurring item at all).
NEW_ROWS = [
    "new-user\tnew-a\t5\t900000000",
    "new-user\tnew-b\t5\t900000010",
    "alone\tnew-lonely\t5\t900000000",
]


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cold_e2e")
    log = root / "events.tsv"
    write_tiny_log(log, bad_rows=NEW_ROWS)
    engaged = {line.split("\t")[1] for line in log.read_text().splitlines()[1:]}
    settings = PipelineSettings(
        source=EventSource(path=str(log)),
        sessions=SessionSettings(min_count=3),
        trainer=TrainerSettings(embedding_dim=16, num_negatives=8, epochs=2, batch_size=64),
        index=IndexSettings(min_recall=0.5),
    )
    run = RunSettings(output_dir=str(root / "out"), beam_args=("--runner=DirectRunner",))
    result = run_local(settings, run)
    return settings, run, result, sorted(engaged)


def test_every_engaged_item_is_answered_and_the_figure_is_in_evaluation_json(cold_run):
    _, run, _, engaged = cold_run
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
    coverage = summary.related["coverage"]
    assert coverage["engaged_items"] == len(engaged) and coverage["answered"] == 1.0
    assert coverage["by_source"]["coldstart"] > 0 and coverage["by_source"]["popular"] > 0
    assert "coldstart" in summary.pushed_models


def test_the_cli_answers_every_engaged_item_and_names_the_source(cold_run, capsys):
    _, run, _, engaged = cold_run
    assert cli.main(["related", "--output-dir", run.output_dir, "--json", "--k", "3", *engaged, "never"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert answers.pop("never") is None
    assert all(answers[item] for item in engaged)
    assert [(r["item"], r["source"]) for r in answers["new-a"]] == [("new-b", "coldstart")]
    assert {r["source"] for r in answers["new-lonely"]} == {"popular"}


def test_rest_answers_an_item_under_min_count_and_refuses_an_unknown_one(cold_run):
    _, run, _, _ = cold_run
    with running_server(f"{run.output_dir}/serving", grpc_frontend="python") as server:
        url = f"{server.rest}/v1/models/related:predict"
        answer = requests.post(url, json={"instances": [{"item_ids": "new-b", "k": 2}]}, timeout=10)
        assert answer.status_code == 200, answer.text
        row = answer.json()["predictions"][0]
        assert row["source"] == "coldstart" and row["related_ids"][0] == "new-a"
        missing = requests.post(url, json={"instances": ["never"]}, timeout=10)
        assert missing.status_code == 404 and "not engaged in the window" in missing.json()["error"]
