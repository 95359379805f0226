"""The real pipeline, end to end on tiny data: ML Metadata executions, pushed files, and the cache."""

import dataclasses
import json
import os
import shutil

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.config import RunSettings
from pipeline.local_runner import run_local
from pipeline.metadata import connection_config
from pipeline.summary import summarize_run
from tests.e2e.expected import COMPONENTS_WITH_COLLECTIONS as COMPONENTS
from tests.e2e.tiny_log import topic_of

pytestmark = pytest.mark.e2e
# Every model one push of this run publishes (collections given, so `board` too).
SERVED_MODELS = (
    "embedding",
    "pin2vec_similar",
    "pin2vec",
    "cooccurrence",
    "board",
    "blend",
    "coldstart",
    "evaluation",
)


@pytest.fixture(scope="module")
def two_runs(direct_run):
    settings, run, first = direct_run  # tests/e2e/conftest.py
    second = run_local(settings, run)
    return settings, run, first, second


def _executions_by_component(run: RunSettings):
    store = metadata_store.MetadataStore(connection_config(run))
    types = {t.id: t.name for t in store.get_execution_types()}
    executions = {}
    for execution in store.get_executions():
        name = types[execution.type_id].rsplit(".", 1)[-1]
        executions.setdefault(name, []).append(execution)
    return executions


def test_every_component_ran_and_is_in_ml_metadata(two_runs):
    _, run, first, _ = two_runs
    assert {name for name, _, _ in first["components"]} >= COMPONENTS
    executions = _executions_by_component(run)
    for component in COMPONENTS:
        assert component in executions, f"no {component} execution in ML Metadata: {sorted(executions)}"
        assert executions[component][0].last_known_state == metadata_store_pb2.Execution.COMPLETE


def test_second_run_reuses_every_step_whose_inputs_did_not_change(two_runs):
    _, run, first, second = two_runs
    assert not any(cached for _, _, cached in first["components"])
    cached = {name for name, _, was_cached in second["components"] if was_cached}
    # The Evaluator's baseline is new (the first run's blessed model), so it and the pusher rerun;
    # everything upstream comes from the cache, and the same model is not pushed a second time.
    assert COMPONENTS - {"Evaluator", "RelatedPusher"} <= cached, second["components"]
    for model in SERVED_MODELS:
        assert len(os.listdir(os.path.join(run.serving_dir, model))) == 1


def test_blessed_model_and_passing_index_were_pushed_atomically(two_runs):
    _, run, _, _ = two_runs
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
    assert summary.blessed
    assert summary.metrics["hit_rate_at_10"] > 0.05  # random would be ~10/120
    assert summary.index_recall >= 0.5
    assert summary.examples["pairs_train"] > 0
    assert summary.examples["pairs_eval"] == summary.examples["pairs_test"] == 80  # one query per user
    assert summary.bad_rows == 1
    for model in SERVED_MODELS:
        versions = os.listdir(os.path.join(run.serving_dir, model))
        assert versions == [str(summary.pushed_version)], versions  # no temp dirs left behind
    embedding_dir = os.path.join(run.serving_dir, "embedding", str(summary.pushed_version))
    assert os.path.exists(os.path.join(embedding_dir, "saved_model.pb"))
    for model, scorer in (("pin2vec_similar", "similar"), ("pin2vec", "next")):
        with open(os.path.join(run.serving_dir, model, str(summary.pushed_version), "index.json")) as f:
            metadata = json.load(f)
        assert metadata["num_items"] == summary.index_items and metadata["scorer"] == scorer


def test_pushed_model_maps_raw_ids_to_embeddings(two_runs):
    import tensorflow as tf

    settings, run, _, _ = two_runs
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
    loaded = tf.saved_model.load(os.path.join(run.serving_dir, "embedding", str(summary.pushed_version)))
    out = loaded.signatures["serving_default"](item_ids=tf.constant(["i1", "never-seen"]))
    assert out["embedding"].shape == (2, settings.trainer.embedding_dim)
    assert out["in_vocabulary"].numpy().tolist() == [True, False]


def _artifact_ids_by_key(store, execution, event_types) -> dict[str, set[int]]:
    by_key: dict[str, set[int]] = {}
    for event in store.get_events_by_execution_ids([execution.id]):
        if event.type in event_types:
            by_key.setdefault(event.path.steps[0].key, set()).add(event.artifact_id)
    return by_key


def test_transform_only_analyses_and_the_trainer_reads_the_raw_pairs(two_runs):
    _, run, _, _ = two_runs
    store = metadata_store.MetadataStore(connection_config(run))
    executions = _executions_by_component(run)
    outputs = metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT
    inputs = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT
    transform_outputs = _artifact_ids_by_key(store, executions["Transform"][0], outputs)
    assert "transform_graph" in transform_outputs
    assert "transformed_examples" not in transform_outputs, sorted(transform_outputs)  # analysis only
    trainer_inputs = _artifact_ids_by_key(store, executions["Trainer"][0], inputs)
    pairs = _artifact_ids_by_key(store, executions["SessionExampleGen"][0], outputs)["examples"]
    assert trainer_inputs["examples"] == pairs
    assert trainer_inputs["transform_graph"] == transform_outputs["transform_graph"]


def test_settings_are_plain_json(two_runs):
    settings, *_ = two_runs
    json.dumps(dataclasses.asdict(settings))


def test_curated_schema_matches_what_schemagen_infers(two_runs):
    import tensorflow_data_validation as tfdv
    from tfx.types import artifact_utils, standard_artifacts

    from pipeline.metadata import latest_outputs
    from pipeline.pipeline import schema_path

    _, run, _, _ = two_runs
    statistics = latest_outputs(connection_config(run), run.pipeline_name)[("StatisticsGen", "statistics")]
    artifact = standard_artifacts.ExampleStatistics()
    artifact.set_mlmd_artifact(statistics)
    stats = tfdv.load_stats_binary(f"{artifact_utils.get_split_uri([artifact], 'train')}/FeatureStats.pb")
    inferred = tfdv.infer_schema(stats, infer_feature_shape=True)
    curated = tfdv.load_schema_text(schema_path())
    as_types = lambda schema: {f.name: (f.type, tuple(d.size for d in f.shape.dim)) for f in schema.feature}  # noqa: E731
    assert as_types(inferred) == as_types(curated)


def test_every_source_is_evaluated_on_the_same_held_out_queries(two_runs):
    settings, run, _, _ = two_runs
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
    evaluation = summary.related
    assert set(evaluation["splits"]) == {"validation", "test"}
    for split in ("validation", "test"):
        by_source = evaluation["splits"][split]
        assert set(by_source) == {"pin2vec", "pin2vec_similar", "cooccurrence", "board", "blend"}
        for metrics in by_source.values():
            assert metrics["queries"] == 80
            assert 0.0 <= metrics["hit_rate"]["10"] <= metrics["hit_rate"]["50"] <= 1.0
            assert set(metrics["buckets"]) == {"head", "torso", "tail"}
    # Topic-structured data: every source beats random (10 of 120 items) by far.
    assert all(m["hit_rate"]["10"] > 0.15 for m in evaluation["splits"]["test"].values())
    assert evaluation["best_source"] in evaluation["sources"]
    assert evaluation["blend"]["weight"] in [s["weight"] for s in evaluation["blend"]["sweep"]]
    with open(summary.report_html, encoding="utf-8") as f:
        html = f.read()
    assert all(source in html for source in ("pin2vec", "pin2vec_similar", "cooccurrence", "board", "blend"))
    assert "<svg" in html
    assert os.path.isfile(summary.report_markdown)
    # The report names what it was computed from: the log, its counts (one bad row), the run's settings.
    provenance = evaluation["provenance"]
    assert provenance["inputs"][0]["path"] == settings.source.path
    assert provenance["inputs"][0]["fingerprint"] not in ("", "not recorded")
    assert provenance["counts"]["bad_rows"] == 1 and provenance["counts"]["events_read"] > 0
    assert provenance["settings"]["trainer.epochs"] == 3
    assert "Item embeddings in 2-D (PCA)" in html and "(fingerprint " in html
    assert len(evaluation["embedding_map"]["items"]) == evaluation["embedding_map"]["total_items"]


def test_pushed_sources_answer_through_the_cli(two_runs, capsys):
    from pipeline import cli

    _, run, _, _ = two_runs
    for source in ("pin2vec", "pin2vec_similar", "cooccurrence", "board", "blend"):
        argv = ["related", "--output-dir", run.output_dir, "--json", "--source", source, "--k", "5", "i1"]
        assert cli.main(argv) == 0
        answer = json.loads(capsys.readouterr().out)["i1"]
        assert 1 <= len(answer) <= 5 and all(r["item"] != "i1" for r in answer)


def test_related_answers_from_the_network_index_without_importing_tensorflow(two_runs):
    """`pin2vec related` loads ScaNN's extension alone (formats/scann_runtime.py): answers in about a second,
    not after TensorFlow's tens of seconds of imports."""
    import subprocess
    import sys

    _, run, _, _ = two_runs
    argv = ["related", "--output-dir", run.output_dir, "--json", "--source", "pin2vec", "--k", "5", "i1"]
    script = (
        "import json, sys\n"
        "from pipeline import cli\n"
        f"code = cli.main({argv!r})\n"
        "print(json.dumps({'code': code, 'tensorflow': 'tensorflow' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    *answer, outcome = done.stdout.strip().splitlines()
    assert json.loads(outcome) == {"code": 0, "tensorflow": False}
    assert 1 <= len(json.loads("\n".join(answer))["i1"]) <= 5


def test_sweep_rerank_reads_the_finished_run(two_runs, tmp_path, capsys):
    """The bench reads a run through the RelatedEvaluator's own readers, so it must follow them when they
    change; its figures for the two sources must be the evaluator's."""
    from bench import sweep_rerank

    _, run, _, _ = two_runs
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
    cache = tmp_path / "run.json"
    assert sweep_rerank.main(["--run-dir", run.output_dir, "--cache", str(cache)]) == 0
    rows = {
        line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in capsys.readouterr().out.splitlines()
    }
    for name, source in (("pin2vec (ScaNN index)", "pin2vec"), ("cooccurrence", "cooccurrence")):
        validation_hr, test_hr = float(rows[name][1]), float(rows[name][4])
        by_split = summary.related["splits"]
        assert validation_hr == pytest.approx(by_split["validation"][source]["hit_rate"]["10"], abs=1e-4)
        assert test_hr == pytest.approx(by_split["test"][source]["hit_rate"]["10"], abs=1e-4)
    assert cache.is_file() and not (tmp_path / "run.json.partial").exists()


def test_the_related_evaluator_reruns_alone_with_the_runs_inputs_and_figures(two_runs, tmp_path, capsys):
    """The bench that profiles the RelatedEvaluator at scale must feed it what the run fed it."""
    from bench import rerun_related_evaluator

    _, run, _, _ = two_runs
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
    out = tmp_path / "again"
    assert rerun_related_evaluator.main(["--run-dir", run.output_dir, "--out", str(out)]) == 0
    assert "peak resident" in capsys.readouterr().out
    again = json.loads((out / "evaluation" / "evaluation.json").read_text())
    assert again["splits"] == summary.related["splits"]
    with pytest.raises(SystemExit):
        rerun_related_evaluator.main(["--run-dir", run.output_dir, "--out", str(out)])  # not empty


def test_a_code_change_reruns_its_step_and_what_follows_it(two_runs, tmp_path, monkeypatch):
    """TFX keys its cache on inputs and properties, not code: each step's code version stands in for it."""
    from components.cooccurrence import component as cooccurrence_component

    settings, run, _, _ = two_runs
    copy = dataclasses.replace(run, output_dir=str(tmp_path / "out"))
    shutil.copytree(run.output_dir, copy.output_dir)
    monkeypatch.setattr(cooccurrence_component, "code_version", lambda *modules: "changed-scorer")
    third = run_local(settings, copy)
    cached = {name for name, _, was_cached in third["components"] if was_cached}
    reran = {name for name, _, was_cached in third["components"] if not was_cached}
    assert {"CooccurrenceCandidates", "RelatedEvaluator"} <= reran, third["components"]
    assert {"SessionExampleGen", "Transform", "Trainer", "ScannIndexer"} <= cached, third["components"]


def test_board_source_lists_items_saved_with_the_query_and_is_served_over_rest(two_runs, capsys):
    """Each tiny board holds one topic, so the board source's answers stay in the query's topic; the pushed
    board table and the pin2vec index answer over TF Serving's REST API from a real `pin2vec serve`."""
    import signal
    import subprocess
    import sys

    import requests

    from pipeline import cli
    from serving import related_sources

    _, run, _, _ = two_runs
    argv = ["related", "--output-dir", run.output_dir, "--json", "--source", "board", "--k", "5", "i1"]
    assert cli.main(argv) == 0
    answer = json.loads(capsys.readouterr().out)["i1"]
    assert answer and {topic_of(r["item"]) for r in answer} == {topic_of("i1")}
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--model-base", run.serving_dir]
    command += ["--rest-port", "0", "--grpc-port", "0", "--grpc-frontend", "python"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["models"]["board"] and ready["models"]["pin2vec"]
        # `related`, the model clients call by default, answers from the source `pin2vec related` uses.
        default = related_sources.default_source(run.serving_dir)
        assert ready["related_answers_from"] == default
        answers = {}
        for model in ("board", "pin2vec", "related", default):
            url = f"http://127.0.0.1:{ready['rest_port']}/v1/models/{model}:predict"
            response = requests.post(url, json={"instances": ["i1"]}, timeout=30)
            assert response.status_code == 200, response.text
            answers[model] = response.json()["predictions"][0]
            assert len(answers[model]["related_ids"]) == 10
        assert answers["related"] == answers[default]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def test_a_model_refused_by_the_gate_still_pushes_and_serves_co_occurrence(two_runs, tmp_path, capsys):
    """TF Serving's rule holds (no unblessed model, index or blend of it goes out), yet the sources that do
    not depend on the model are pushed, and `pin2vec related` answers from the best of them."""
    from pipeline import cli
    from pipeline.config import EvaluationSettings
    from serving.server import ServerSettings, build_registry

    settings, run, _, _ = two_runs
    copy = dataclasses.replace(run, output_dir=str(tmp_path / "out"))
    shutil.copytree(run.output_dir, copy.output_dir)
    refused = dataclasses.replace(settings, evaluation=EvaluationSettings(min_hit_rate_at_10=1.0))
    result = run_local(refused, copy)
    config = connection_config(copy)
    summary = summarize_run(config, copy.pipeline_name, copy.pipeline_root, run_id=result["run_id"])
    assert not summary.blessed and "Evaluator" in summary.kept_back_reason
    # Which check refused it, from the Evaluator's validation result: the floor, not the drop (same model).
    [failure] = summary.gate_failures
    assert (failure.check, failure.limit) == ("floor", 1.0) and failure.value < 1.0
    assert summary.pushed_models == ["board", "coldstart", "cooccurrence", "evaluation"]
    assert summary.default_source in ("cooccurrence", "board")
    serving = os.path.join(copy.output_dir, "serving")
    assert len(os.listdir(os.path.join(serving, "embedding"))) == 1  # only the first run's blessed model
    assert cli.main(["related", "--output-dir", copy.output_dir, "--k", "3", "i1"]) == 0
    out = capsys.readouterr().out
    assert f"({summary.default_source}: {os.path.join(serving, summary.default_source)}" in out
    assert "  3. " in out
    # The server's `related` answers from that source too, never from the refused model's index.
    registry = build_registry(ServerSettings(model_base=serving))
    registry.poll()
    try:
        assert registry.alias_target("related") == summary.default_source
        with registry.acquire("related") as servable:
            assert servable.directory.startswith(os.path.join(serving, summary.default_source))
    finally:
        registry.stop()
