"""Compiles `create_pipeline()` to a Kubeflow Pipelines (v2) spec: paths and runner config only."""

from __future__ import annotations

import os

from tfx import v1 as tfx

from pipeline.config import PipelineSettings, RunSettings
from pipeline.pipeline import create_pipeline

DEFAULT_IMAGE = "pin2vec:latest"


def compile_kubeflow(
    settings: PipelineSettings,
    run: RunSettings,
    output_file: str,
    image: str = DEFAULT_IMAGE,
    input_fingerprint: str = "",
) -> str:
    """Writes the pipeline-spec JSON; on the cluster, paths are the object-store paths of `run`.

    The metadata store is the cluster's, so no connection config is compiled in. The input usually is
    not readable from where the pipeline is compiled: pass a fingerprint of it (a data version) so that
    the cluster's cache tells new data from old.
    """
    pipeline = create_pipeline(
        pipeline_name=run.pipeline_name,
        pipeline_root=run.pipeline_root,
        settings=settings,
        input_fingerprint=input_fingerprint,
        serving_dir=run.serving_dir,
        beam_pipeline_args=list(run.beam_args or ()),
        enable_cache=run.enable_cache,
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(output_file)),
        output_filename=os.path.basename(output_file),
    )
    runner.run(pipeline, write_out=True)
    return output_file
