"""The same `create_pipeline()` compiles for Kubeflow Pipelines v2 with every component in the spec."""

import json

import pytest

from components.session_example_gen.session_settings import EventSource
from components.session_example_gen.spans_lib import range_config_from_json
from pipeline.config import PipelineSettings, RunSettings
from pipeline.kubeflow_runner import compile_kubeflow, resolve_input_fingerprint
from tests.e2e.expected import COMPONENTS, RESOLVER


def test_compiles_to_a_pipeline_spec_with_every_component(tmp_path):
    settings = PipelineSettings(source=EventSource(path="gs://bucket/events/*.parquet"))
    run = RunSettings(output_dir="gs://bucket/pin2vec")
    out = compile_kubeflow(
        settings,
        run,
        str(tmp_path / "pin2vec.json"),
        image="example/pin2vec:1",
        input_fingerprint="2026-12-03",
    )
    spec = json.loads((tmp_path / "pin2vec.json").read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert out.endswith("pin2vec.json")
    components = {t for t in tasks if not t.startswith(RESOLVER)}
    assert components == COMPONENTS
    assert any(t.startswith(RESOLVER) for t in tasks)
    images = {
        e["container"]["image"]
        for e in spec["pipelineSpec"]["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    assert images == {"example/pin2vec:1"}
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/pin2vec/pipeline"
    example_gen = spec["pipelineSpec"]["components"]["SessionExampleGen"]
    assert "input_fingerprint" in json.dumps(example_gen)
    # Warm start on Kubeflow: the Trainer's base model is the stock latest-blessed resolver's output.
    base_model = tasks["Trainer"]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert base_model["producerTask"].startswith(RESOLVER)
    parameters = json.dumps(spec["pipelineSpec"]["root"]["dag"]["tasks"]["SessionExampleGen"])
    assert "2026-12-03" in parameters


def test_an_unreadable_input_needs_a_fingerprint_and_a_readable_one_gets_its_own(tmp_path, monkeypatch):
    from pipeline import kubeflow_runner

    log = tmp_path / "events.csv"
    log.write_text("user_id,item_id,timestamp\nu,i,1\n")
    first = resolve_input_fingerprint(str(log), None)
    log.write_text("user_id,item_id,timestamp\nu,i,1\nu,j,2\n")  # new logs at the same path
    assert resolve_input_fingerprint(str(log), None) != first
    assert resolve_input_fingerprint("gs://bucket/events/*.parquet", "v7") == "v7"

    def unreadable(path):
        raise PermissionError(f"no credentials for {path}")

    monkeypatch.setattr(kubeflow_runner, "fingerprint_inputs", unreadable)
    with pytest.raises(ValueError, match="--input-fingerprint"):
        resolve_input_fingerprint("gs://bucket/events/*.parquet", None)


def test_a_span_pattern_is_resolved_in_the_pod_and_its_step_is_never_answered_from_the_cache(tmp_path):
    settings = PipelineSettings(
        source=EventSource(path="gs://bucket/logs/{YYYY}-{MM}-{DD}/*.parquet"), num_spans=7
    )
    run = RunSettings(output_dir="gs://bucket/pin2vec")
    compile_kubeflow(settings, run, str(tmp_path / "pin2vec.json"), image="example/pin2vec:1")
    spec = json.loads((tmp_path / "pin2vec.json").read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks["SessionExampleGen"]["cachingOptions"] == {"enableCache": False}
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}
    parameters = tasks["SessionExampleGen"]["inputs"]["parameters"]
    value = lambda name: parameters[name]["runtimeValue"]["constantValue"]["stringValue"]  # noqa: E731
    assert value("input_path") == "gs://bucket/logs/{YYYY}-{MM}-{DD}/*.parquet"
    assert range_config_from_json(value("range_config")).rolling_range.num_spans == 7
