"""The same `create_pipeline()` compiles for Kubeflow Pipelines v2 with every component in the spec."""

import json
import os
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.session_example_gen.session_settings import EventSource
from components.session_example_gen.spans_lib import range_config_from_json
from pipeline.config import PipelineSettings, RunSettings
from pipeline.kubeflow_runner import compile_kubeflow, resolve_input_fingerprint
from tests.e2e.expected import COMPONENTS, RESOLVER

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    assert _artifact_classes(spec) >= {"pin2vec.RelatedCandidates", "pin2vec.ScannIndex"}
    # Nothing names the compiling machine's install, which no pod has (the schema is package-relative).
    assert REPO not in json.dumps(spec)
    schema_file = tasks["ImportSchemaGen"]["inputs"]["parameters"]["schema_file"]["runtimeValue"]
    assert schema_file["constantValue"] == {"stringValue": "pipeline/schema/schema.pbtxt"}


def _artifact_classes(spec) -> set[str]:
    """Every artifact type title of the spec, checked to be importable as TFX's Kubeflow entrypoint imports
    it in each pod (a custom type by its type name as a class path: pin2vec/__init__.py)."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint
    from tfx.utils import import_utils

    titles = set()
    for component in spec["pipelineSpec"]["components"].values():
        for side in ("inputDefinitions", "outputDefinitions"):
            for definition in component.get(side, {}).get("artifacts", {}).values():
                schema = definition["artifactType"]
                type_schema = json_format.ParseDict(schema, pipeline_spec_pb2.ArtifactTypeSchema())
                path = entrypoint._retrieve_class_path(type_schema)
                cls = import_utils.import_class_by_path(path)
                title = yaml.safe_load(schema["instanceSchema"])["title"]
                assert title in (f"tfx.{cls.__name__}", cls.TYPE_NAME), (title, path)
                titles.add(title)
    return titles


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


COMPILE_ARGS = [
    "compile",
    "--events",
    "gs://bucket/events/*.parquet",
    "--output-dir",
    "gs://bucket/pin2vec",
    "--image",
    "example/pin2vec:1",
    "--input-fingerprint",
    "2026-12-03",
]
CLUSTER_ARGS = [
    "--trainer-workers",
    "3",
    "--trainer-ps",
    "2",
    "--vertex-project",
    "my-project",
    "--vertex-region",
    "europe-west4",
    "--trainer-ps-machine-type",
    "n1-highmem-16",
    "--vertex-service-account",
    "trainer@my-project.iam.gserviceaccount.com",
]


def _differences(a, b, path=()):
    """The paths (tuples of keys) where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), (*path, k))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, (*path, i))]
    return [] if a == b else [path]


def test_trainer_replicas_become_vertex_worker_pools_and_change_nothing_else(tmp_path):
    from pipeline import cli

    plain, zero, cluster = (str(tmp_path / f"{name}.json") for name in ("plain", "zero", "cluster"))
    assert cli.main([*COMPILE_ARGS, "--kubeflow", plain]) == 0
    assert cli.main([*COMPILE_ARGS, "--kubeflow", zero, "--trainer-workers", "0", "--trainer-ps", "0"]) == 0
    assert cli.main([*COMPILE_ARGS, "--kubeflow", cluster, *CLUSTER_ARGS]) == 0
    plain, zero, cluster = (json.loads(Path(path).read_text()) for path in (plain, zero, cluster))
    assert zero == plain  # without replicas, the spec of the single-process Trainer

    trainer_args = ("pipelineSpec", "deploymentSpec", "executors", "Trainer_executor", "container", "args")
    config = ("pipelineSpec", "root", "dag", "tasks", "Trainer", "inputs", "parameters", "custom_config")
    config_value = (*config, "runtimeValue", "constantValue", "stringValue")
    assert set(_differences(plain, cluster)) == {(*trainer_args, 1), config_value}
    executors = cluster["pipelineSpec"]["deploymentSpec"]["executors"]
    assert executors["Trainer_executor"]["container"]["args"][1] == (
        "components.warm_start_trainer.vertex_executor.Executor"
    )
    value = lambda spec: json.loads(  # noqa: E731
        spec["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"][
            "runtimeValue"
        ]["constantValue"]["stringValue"]
    )
    plain_config, cluster_config = value(plain), value(cluster)
    assert {k: cluster_config[k] for k in plain_config} == plain_config  # the trainer's settings, unchanged
    assert cluster_config["ai_platform_enable_vertex"] is True
    assert cluster_config["ai_platform_vertex_region"] == "europe-west4"
    job = cluster_config["ai_platform_training_args"]
    assert job["project"] == "my-project"
    assert job["job_spec"]["service_account"] == "trainer@my-project.iam.gserviceaccount.com"
    # Vertex AI names the pools chief, worker and ps in each replica's TF_CONFIG, in this order.
    pools = job["job_spec"]["worker_pool_specs"]
    assert [pool["replica_count"] for pool in pools] == [1, 3, 2]
    assert [pool["machine_spec"]["machine_type"] for pool in pools] == [
        "n1-standard-8",
        "n1-standard-8",
        "n1-highmem-16",
    ]
    assert {pool["container_spec"]["image_uri"] for pool in pools} == {"example/pin2vec:1"}


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--trainer-workers", "-1", "--trainer-ps", "1"], "--trainer-workers must be a count >= 0"),
        (["--trainer-workers", "2", "--trainer-ps", "-1"], "--trainer-ps must be a count >= 0"),
        (["--trainer-ps", "2"], "--trainer-ps=2 needs --trainer-workers >= 1"),
        (["--trainer-workers", "2"], "--trainer-workers=2 needs --trainer-ps >= 1"),
        (["--trainer-workers", "2", "--trainer-ps", "1"], "--vertex-project is required"),
    ],
)
def test_trainer_replica_flags_are_checked_naming_the_flag(tmp_path, capsys, flags, named):
    from pipeline import cli

    assert cli.main([*COMPILE_ARGS, "--kubeflow", str(tmp_path / "p.json"), *flags]) == 1
    assert named in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()
