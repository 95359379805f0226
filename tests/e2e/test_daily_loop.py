"""The daily loop end to end, as a user runs it: `pin2vec data synthetic --days N` adds a day, `pin2vec run
--events '<logs>/{YYYY}-{MM}-{DD}/*.parquet' --days 2` retrains on the 2-day window into one output directory,
three days in a row; then a rerun on the same window, and `pin2vec rollback` under a running server.

Asserted from ML Metadata and the run outputs:
- spans: each run's Examples artifact records the window it read (day 1 alone, the day before it missing;
  days 1-2; days 2-3), and the rerun on an unchanged window makes no new Examples;
- warm start: run 1 is cold; runs 2 and 3 start from the previous run's blessed model (the Trainer's
  `base_model` input event in ML Metadata, and the Model artifact's carried / new / dropped counts, which
  match the two models' vocabularies id by id); `--cold-start` is tests/test_warm_start_wiring.py's;
- cache: a new day reruns every step but ImportSchemaGen; the rerun reuses every step its changed flags do
  not reach, the Trainer included (its base model is still run 2's: run 3's was trained on these examples)
  but not the Evaluator (its baseline, the latest blessed model, is now run 3's own);
- each run pushes a new committed version; evaluation.json compares it with the version served before
  (`stability`) and answers every item engaged in the window (`coverage`): day 3's items added today, under
  --min-count, or engaged alone, through `pin2vec related` and REST;
- the rerun's candidate is held back by an impossible --min-neighbour-overlap;
- `pin2vec rollback --previous` makes `pin2vec related` and a running server answer from version 2, recorded
  in versions/rollbacks.jsonl; `--release` returns to version 3.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from formats import push_records, serving_layout
from pipeline import cli
from pipeline.config import RunSettings
from pipeline.metadata import PIPELINE_RUN_CONTEXT_TYPE, connection_config, custom_value
from pipeline.summary import RunSummary, summarize_run
from tests.e2e.expected import COMPONENTS, RESOLVER
from tests.serving.conftest import running_server, wait_until
from trainer_module.warm_start_files import read_model_state

pytestmark = pytest.mark.e2e

EVENTS_PER_DAY = 1500
SYNTHETIC = ["data", "synthetic", "--items", "120", "--events", str(EVENTS_PER_DAY),
             "--new-items-per-day", "4", "--seed", "7"]  # fmt: skip
TRAIN = ["--days", "2", "--min-count", "2", "--epochs", "1", "--warm-epochs", "1", "--embedding-dim", "16",
         "--negatives", "8", "--batch-size", "64", "--min-index-recall", "0.5",
         # Every candidate is blessed, so that each run warm-starts from the one before: lineage is under test
         # here, the gate in tests/components.
         "--min-hit-rate", "0", "--max-hit-rate-drop", "1", "--beam-arg=--runner=DirectRunner"]  # fmt: skip
# Added to day 3 (2024-01-03 UTC): a user who engages two new items once each (under --min-count 2), and one
# who engages a new item alone (no co-occurring item at all). (user_id, item_id, timestamp)
DAY3 = 1_704_240_000
NEW_A, NEW_B, LONELY = "1000001", "1000002", "1000003"
TODAYS_ROWS = [
    (900_001, int(NEW_A), DAY3 + 100),
    (900_001, int(NEW_B), DAY3 + 110),
    (900_002, int(LONELY), DAY3),
]


@dataclasses.dataclass(frozen=True)
class Run:
    """One `pin2vec run`: its summary (from ML Metadata), printed summary, steps and artifacts."""

    summary: RunSummary
    stdout: str
    steps: dict[str, int]  # node id -> the execution's last_known_state
    examples: mlmd.Artifact  # the Examples artifact this run used (made or reused)
    model: mlmd.Artifact
    base_model_ids: list[int]  # the Trainer execution's `base_model` input artifacts

    @property
    def cached(self) -> set[str]:
        return {node for node, state in self.steps.items() if state == mlmd.Execution.CACHED}


@dataclasses.dataclass(frozen=True)
class Loop:
    logs: str
    out: str
    runs: list[Run]

    @property
    def serving(self) -> str:
        return os.path.join(self.out, "serving")

    @property
    def store(self) -> metadata_store.MetadataStore:
        return metadata_store.MetadataStore(connection_config(RunSettings(output_dir=self.out)))


def _pin2vec(*argv: str) -> str:
    """`pin2vec ARGV` in this process (TensorFlow and TFX load once for every run); its stdout."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(list(argv))
    assert code == 0, f"pin2vec {' '.join(argv)} exited {code}; stdout:\n{stdout.getvalue()[-3000:]}"
    return stdout.getvalue()


def _newest_run(out: str, stdout: str) -> Run:
    """The newest run in `out`'s ML Metadata: its steps, its Examples and Model, the Trainer's base model."""
    run = RunSettings(output_dir=out)
    store = metadata_store.MetadataStore(connection_config(run))
    context = max(store.get_contexts_by_type(PIPELINE_RUN_CONTEXT_TYPE), key=lambda c: c.id)
    executions = {e.id: e for e in store.get_executions_by_context(context.id)}
    node_of = {
        execution.id: node.name.removeprefix(f"{run.pipeline_name}.")
        for node in store.get_contexts_by_type("node")
        for execution in store.get_executions_by_context(node.id)
        if execution.id in executions
    }
    steps = {node_of[i]: e.last_known_state for i, e in executions.items()}
    events = store.get_events_by_execution_ids(list(executions))

    def artifact_id(node, key, kind):
        [found] = {
            e.artifact_id
            for e in events
            if node_of[e.execution_id] == node and e.type == kind and e.path.steps[0].key == key
        }
        return found

    examples_id = artifact_id("SessionExampleGen", "examples", mlmd.Event.OUTPUT)
    model_id = artifact_id("Trainer", "model", mlmd.Event.OUTPUT)
    base_model_ids = [
        e.artifact_id
        for e in events
        if node_of[e.execution_id] == "Trainer"
        and e.type == mlmd.Event.INPUT
        and e.path.steps[0].key == "base_model"
    ]
    examples, model = store.get_artifacts_by_id([examples_id, model_id])
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root, run_id=context.name)
    return Run(summary, stdout, steps, examples, model, base_model_ids)


def _add_todays_items(logs: str) -> None:
    """A second file in day 3's partition: the pattern's `*.parquet` reads it with the generated one."""
    users, items, times = zip(*TODAYS_ROWS, strict=True)
    columns = {"user_id": users, "item_id": items, "timestamp": times}
    table = pa.table({name: pa.array(values, pa.int64()) for name, values in columns.items()})
    pq.write_table(table, os.path.join(logs, "2024-01-03", "added-today.parquet"))


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> Loop:
    root = tmp_path_factory.mktemp("daily")
    logs, out = str(root / "logs"), str(root / "out")
    pattern = os.path.join(logs, "{YYYY}-{MM}-{DD}", "*.parquet")
    runs = []
    for day in (1, 2, 3):
        _pin2vec(*SYNTHETIC, "--days", str(day), "--out", logs)  # adds day `day`, keeps the others
        if day == 3:
            _add_todays_items(logs)
        runs.append(_newest_run(out, _pin2vec("run", "--events", pattern, "--output-dir", out, *TRAIN)))
    # The same window again, with a changed index floor (the later flag wins: the indexer, the
    # RelatedEvaluator and the pusher rerun) and a neighbour-overlap gate no version can meet.
    rerun = [*TRAIN, "--min-index-recall", "0.4", "--min-neighbour-overlap", "1.01"]
    runs.append(_newest_run(out, _pin2vec("run", "--events", pattern, "--output-dir", out, *rerun)))
    return Loop(logs, out, runs)


def _engaged(logs: str, days: list[str]) -> set[str]:
    return {
        str(item)
        for day in days
        for name in os.listdir(os.path.join(logs, day))
        for item in pq.read_table(os.path.join(logs, day, name), columns=["item_id"]).column(0).to_pylist()
    }


def test_each_run_read_the_rolling_window_recorded_on_its_examples(loop):
    first, second, third, rerun = loop.runs
    windows = [  # (run, spans read, missing in the window, span numbers: days since 1970, as TFX counts)
        (first, ["2024-01-01"], ["2023-12-31"], [19723]),
        (second, ["2024-01-01", "2024-01-02"], [], [19723, 19724]),
        (third, ["2024-01-02", "2024-01-03"], [], [19724, 19725]),  # the window moved
    ]
    for (run, spans, missing, numbers), files in zip(windows, (1, 2, 3), strict=True):  # day 3: two files
        examples = run.examples
        assert run.summary.spans == spans and run.summary.missing_spans == missing
        assert custom_value(examples, "span_labels") == ",".join(spans)
        assert examples.properties["span"].int_value == numbers[-1]
        assert custom_value(examples, "spans") == ",".join(map(str, numbers))
        assert custom_value(examples, "input_files") == files
        assert run.summary.examples["pairs_train"] > 0
        assert f"  spans read: {len(spans)} ({', '.join(spans)}) of " in run.stdout
        assert run.summary.input_pattern.endswith(os.path.join("logs", "{YYYY}-{MM}-{DD}", "*.parquet"))
    assert "missing in the window (no files, skipped): 2023-12-31" in first.stdout
    assert "missing in the window" not in second.stdout + third.stdout
    assert second.summary.examples["events_read"] == 2 * EVENTS_PER_DAY
    assert third.summary.examples["events_read"] == 2 * EVENTS_PER_DAY + len(TODAYS_ROWS)
    fingerprints = {custom_value(run.examples, "input_fingerprint") for run in (first, second, third)}
    assert len(fingerprints) == 3
    # The rerun read the same window and reused run 3's Examples: no fourth one was made.
    assert rerun.examples.id == third.examples.id and rerun.summary.spans == third.summary.spans
    assert len(loop.store.get_artifacts_by_type("Examples")) == 3  # Transform writes none (materialize=False)


def test_run_one_is_cold_and_each_next_run_warm_starts_from_the_previous_blessed_model(loop):
    first, second, third, rerun = loop.runs
    assert first.summary.warm_start is False and first.base_model_ids == []
    assert first.summary.items_carried_over == 0 and first.summary.items_dropped == 0
    assert first.summary.warm_start_base_model == ""
    assert "Trainer: cold start, " in first.stdout
    vocabularies = [set(read_model_state(run.model.uri).item_ids) for run in (first, second, third)]
    assert first.summary.items_new == len(vocabularies[0])
    for previous, run, before, now in zip(
        (first, second), (second, third), vocabularies[:2], vocabularies[1:], strict=True
    ):
        assert previous.summary.blessed
        summary = run.summary
        assert summary.warm_start is True, summary.warm_start_note
        assert run.base_model_ids == [previous.model.id]  # the lineage: the Trainer's base_model input
        assert summary.warm_start_base_model == previous.model.uri
        # Matched by id: items in both were carried over, today's started fresh, vanished ones were dropped.
        counts = (summary.items_carried_over, summary.items_new, summary.items_dropped)
        assert counts == (len(before & now), len(now - before), len(before - now))
        assert summary.items_new > 0  # items first engaged that day
        assert f"Trainer: warm start from {previous.model.uri}: {counts[0]} items carried over" in run.stdout
    assert third.summary.items_dropped > 0  # day 1 left the window, and with it items only day 1 engaged
    assert second.summary.metrics["hit_rate_at_10"] > 0.05  # one warm epoch keeps what the cold ones learnt
    # The rerun's base model is still run 2's (run 3's was trained on these examples): the Trainer's inputs
    # did not change, so it came from the cache with run 3's model.
    assert rerun.model.id == third.model.id and rerun.base_model_ids == [second.model.id]


def test_a_new_day_reruns_every_step_and_the_rerun_reuses_all_its_flags_do_not_reach(loop):
    first, second, third, rerun = loop.runs
    for run in loop.runs:  # the components, and the two resolvers (which run every time)
        assert set(run.steps) == COMPONENTS | {RESOLVER, "warm_start_model_resolver"}
    assert first.cached == set()
    # A new day: new Examples, so everything downstream of them reruns; only the schema import is reused.
    assert second.cached == third.cached == {"ImportSchemaGen"}
    # The Evaluator reruns too: its baseline (TFX's latest blessed model) is now run 3's model itself.
    redone = COMPONENTS - rerun.cached
    assert redone == {"Evaluator", "ScannIndexer", "RelatedEvaluator", "RelatedPusher"}


def test_each_day_pushes_a_new_version_compared_with_the_one_served_before(loop):
    first, second, third, _ = loop.runs
    versions = [run.summary.pushed_version for run in (first, second, third)]
    assert None not in versions and versions == sorted(set(versions))
    assert sorted(push_records.committed(loop.serving)) == versions  # the rerun's was held back

    stability = first.summary.stability
    assert stability["overlap_at_10"] is None and "nothing was served" in stability["reason"]
    for run, served in ((second, versions[0]), (third, versions[1])):
        stability = run.summary.stability
        assert stability["served_version"] == served, stability
        assert 0.0 <= stability["overlap_at_10"] <= 1.0 and stability["items"] > 0
        assert set(stability["buckets"]) == {"head", "torso", "tail"}
        assert sum(b["items"] for b in stability["buckets"].values()) == stability["items"]
        for bucket in stability["buckets"].values():
            assert bucket["overlap_at_10"] is None or 0.0 <= bucket["overlap_at_10"] <= 1.0
        assert {"pin2vec", "pin2vec_similar", "cooccurrence", "blend"} <= set(stability["sources"])
        assert f"with the served version {served}): " in run.stdout
        with open(os.path.join(os.path.dirname(run.summary.report_html), "evaluation.json")) as f:
            evaluation = json.load(f)
        assert evaluation["stability"] == stability
        assert evaluation["coverage"]["answered"] == 1.0


def test_every_item_engaged_in_the_window_is_answered(loop):
    _, _, third, _ = loop.runs
    engaged = _engaged(loop.logs, ["2024-01-02", "2024-01-03"])
    coverage = third.summary.related["coverage"]
    assert coverage["engaged_items"] == len(engaged) and coverage["answered"] == 1.0
    assert coverage["by_source"]["coldstart"] > 0 and coverage["by_source"]["popular"] > 0
    assert "coldstart" in third.summary.pushed_models


def test_the_rerun_is_compared_with_version_3_and_the_gate_holds_it_back(loop):
    _, _, third, rerun = loop.runs
    stability = rerun.summary.stability
    assert stability["served_version"] == third.summary.pushed_version
    # The same model and tables (the indexes rebuilt from the same embeddings): the served lists exactly.
    assert {source: figure["overlap_at_10"] for source, figure in stability["sources"].items()} == {
        source: 1.0 for source in ("pin2vec", "pin2vec_similar", "cooccurrence", "blend")
    }
    assert rerun.summary.pushed_version is None
    assert "--min-neighbour-overlap 1.01" in rerun.summary.not_pushed_reason
    assert f"{stability['overlap_at_10']:.3f}" in rerun.summary.not_pushed_reason
    assert f"NOT pushed: {rerun.summary.not_pushed_reason}" in rerun.stdout
    pushed = {run.summary.pushed_version for run in loop.runs[:3]}
    for model in serving_layout.MODELS:  # nothing of the rerun's was published
        assert set(serving_layout.existing_versions(os.path.join(loop.serving, model))) <= pushed, model


def _related(loop: Loop, *ids: str) -> dict:
    return json.loads(_pin2vec("related", "--output-dir", loop.out, "--json", "--k", "3", *ids))


def _served_versions(server) -> list[int]:
    response = requests.get(f"{server.rest}/v1/models/related", timeout=10)
    return [int(s["version"]) for s in response.json()["model_version_status"]] if response.ok else []


def _rest(server, item: str) -> requests.Response:
    body = {"instances": [{"item_ids": item, "k": 2}]}
    return requests.post(f"{server.rest}/v1/models/related:predict", json=body, timeout=10)


def test_rollback_serves_version_2_and_release_version_3(loop):
    _, second, third, _ = loop.runs
    v2, v3 = second.summary.pushed_version, third.summary.pushed_version
    engaged = sorted(_engaged(loop.logs, ["2024-01-02", "2024-01-03"]))
    answers = _related(loop, *engaged, "never")
    assert answers.pop("never") is None and all(answers[item] for item in engaged)
    assert [(r["item"], r["source"]) for r in answers[NEW_A]] == [(NEW_B, "coldstart")]
    assert {r["source"] for r in answers[LONELY]} == {"popular"}

    with running_server(loop.serving, keep_versions=1, grpc_frontend="python") as server:
        wait_until(lambda: _served_versions(server) == [v3], what=f"version {v3} to be served")
        answer = _rest(server, NEW_B)
        assert answer.status_code == 200, answer.text
        row = answer.json()["predictions"][0]
        assert row["source"] == "coldstart" and row["related_ids"][0] == NEW_A
        missing = requests.post(f"{server.rest}/v1/models/related:predict", json={"instances": ["never"]})
        assert missing.status_code == 404 and "not engaged in the window" in missing.json()["error"]

        said = _pin2vec("rollback", "--output-dir", loop.out, "--previous")
        assert f"serving now answers from version {v2} (was {v3})" in said
        wait_until(lambda: _served_versions(server) == [v2], what=f"the rollback to version {v2}")
        # Version 2's window (days 1-2) never saw day 3's items: they are unknown again, to both readers.
        assert _rest(server, NEW_B).status_code == 404
        assert _related(loop, NEW_A, NEW_B) == {NEW_A: None, NEW_B: None}
        header = _pin2vec("related", "--output-dir", loop.out, engaged[0]).splitlines()[0]
        version_dir = header.split(": ", 1)[1].split(";")[0].rstrip(")")  # "(blend: DIR; then ...)"
        assert version_dir.startswith(loop.serving) and os.path.basename(version_dir) == str(v2), header

        _pin2vec("rollback", "--output-dir", loop.out, "--release")
        wait_until(lambda: _served_versions(server) == [v3], what=f"the release back to version {v3}")
        assert _rest(server, NEW_B).json()["predictions"][0]["related_ids"][0] == NEW_A
    assert _related(loop, NEW_A)[NEW_A][0]["item"] == NEW_B
    history = os.path.join(loop.serving, "versions", push_records.HISTORY_FILE)
    with open(history, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert [(r["action"], r["from"], r["version"]) for r in records] == [
        ("rollback", v3, v2),
        ("release", v2, None),
    ]
    assert sorted(push_records.committed(loop.serving))[-2:] == [v2, v3]  # nothing was deleted
