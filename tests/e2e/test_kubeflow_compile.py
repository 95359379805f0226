"""The same `create_pipeline()` compiles for Kubeflow Pipelines v2 with every component in the spec."""

import json

from components.session_example_gen.sessions_lib import EventSource
from pipeline.config import PipelineSettings, RunSettings
from pipeline.kubeflow_runner import compile_kubeflow
from tests.e2e.expected import COMPONENTS, RESOLVER


def test_compiles_to_a_pipeline_spec_with_every_component(tmp_path):
    settings = PipelineSettings(source=EventSource(path="gs://bucket/events/*.parquet"))
    run = RunSettings(output_dir="gs://bucket/pin2vec")
    out = compile_kubeflow(settings, run, str(tmp_path / "pin2vec.json"), image="example/pin2vec:1")
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
