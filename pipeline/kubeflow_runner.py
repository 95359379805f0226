"""Compiles `create_pipeline()` to a Kubeflow Pipelines (v2) spec: paths and runner config only."""

from __future__ import annotations

import json
import os

from tfx import v1 as tfx

from components.session_example_gen.input_files import fingerprint_inputs
from components.session_example_gen.spans_lib import has_span_spec
from pipeline.beam_staging import with_worker_image
from pipeline.config import PipelineSettings, RunSettings, TrainerClusterSettings
from pipeline.pipeline import create_pipeline

DEFAULT_IMAGE = "pin2vec:latest"


def resolve_input_fingerprint(path: str, given: str | None) -> str:
    """The fingerprint a compiled input step carries: `given`, else one read from the files at `path` (names,
    sizes, modification times). Without either, new logs at the same path would be answered from the
    cluster's cache, so an input that cannot be read from here is an error."""
    if given:
        return given
    try:
        return fingerprint_inputs(path)
    except Exception as error:
        raise ValueError(
            f"cannot fingerprint the input {path!r} from here ({type(error).__name__}: {error}); pass "
            "--input-fingerprint with a version of the data (e.g. its date partition or a hash of its "
            "file listing), so that the cluster's cache never answers new logs with old results"
        ) from error


def vertex_trainer_config(cluster: TrainerClusterSettings, image: str) -> dict:
    """The Trainer's `custom_config` entries for TFX's Vertex Trainer extension: a CustomJob of three worker
    pools, all on the pipeline's image. Vertex AI names pool 0 `chief`, pool 1 `worker` and pool 2 `ps` in
    each replica's TF_CONFIG; TFX sets every pool's command to the Trainer's executor."""
    from tfx.extensions.google_cloud_ai_platform import constants
    from tfx.extensions.google_cloud_ai_platform.trainer.executor import TRAINING_ARGS_KEY

    def pool(machine_type: str, replicas: int) -> dict:
        return {
            "machine_spec": {"machine_type": machine_type},
            "replica_count": replicas,
            "container_spec": {"image_uri": image},
        }

    job_spec: dict = {
        "worker_pool_specs": [
            pool(cluster.machine_type, 1),
            pool(cluster.machine_type, cluster.workers),
            pool(cluster.ps_machine_type, cluster.ps),
        ]
    }
    if cluster.service_account:
        job_spec["service_account"] = cluster.service_account
    return {
        constants.ENABLE_VERTEX_KEY: True,
        constants.VERTEX_REGION_KEY: cluster.region,
        TRAINING_ARGS_KEY: {"project": cluster.project, "job_spec": job_spec},
    }


def compile_kubeflow(
    settings: PipelineSettings,
    run: RunSettings,
    output_file: str,
    image: str = DEFAULT_IMAGE,
    input_fingerprint: str | None = None,
    trainer_cluster: TrainerClusterSettings | None = None,
) -> str:
    """Writes the pipeline-spec JSON; on the cluster, paths are the object-store paths of `run`.

    With `trainer_cluster` enabled, the Trainer step submits a Vertex AI CustomJob of chief, worker and
    parameter-server replicas (`vertex_trainer_config`) and waits for it; otherwise it trains in its own pod.

    The metadata store is the cluster's, so no connection config is compiled in. The spec carries a
    fingerprint of each input (`resolve_input_fingerprint`) so that the cluster's cache tells new data from
    old.

    A span pattern (`{YYYY}-{MM}-{DD}`, `{SPAN}`) is resolved in the SessionExampleGen pod when the run
    starts, so a scheduled run reads the spans that exist then. Kubeflow runs no TFX driver before its cache
    lookup, and the pattern itself does not change from day to day, so that step's cache is turned off in
    the spec: it always resolves and reads, and the steps after it take its new output (and rerun).
    """
    collections = settings.collections
    is_pattern = has_span_spec(settings.source.path)
    pipeline = create_pipeline(
        pipeline_name=run.pipeline_name,
        pipeline_root=run.pipeline_root,
        settings=settings,
        input_fingerprint=(input_fingerprint or "")
        if is_pattern
        else resolve_input_fingerprint(settings.source.path, input_fingerprint),
        # One fingerprint per input: new collections must not retrain, new events must not recount boards.
        collections_fingerprint=collections
        and resolve_input_fingerprint(collections.path, input_fingerprint),
        serving_dir=run.serving_dir,
        beam_pipeline_args=with_worker_image(run.beam_args or (), image),
        enable_cache=run.enable_cache,
        stock_resolvers_only=True,  # the v2 compiler turns only TFX's own resolver strategies into queries
        trainer_job=vertex_trainer_config(trainer_cluster, image)
        if trainer_cluster is not None and trainer_cluster.enabled
        else None,
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(pipeline, write_out=True)
    if is_pattern:
        uncache_task(output_file, "SessionExampleGen")
    return output_file


def uncache_task(spec_file: str, task: str) -> None:
    """Turns off the Kubeflow cache of one task of a compiled pipeline spec (TFX sets it pipeline-wide)."""
    with open(spec_file, encoding="utf-8") as f:
        spec = json.load(f)
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    tasks[task]["cachingOptions"] = {"enableCache": False}
    with open(spec_file, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2, sort_keys=True)
