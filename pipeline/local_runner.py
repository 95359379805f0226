"""Runs `create_pipeline()` with LocalDagRunner and the Beam DirectRunner: paths and runner config only."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

from tfx import v1 as tfx

from components.session_example_gen.sessions_lib import list_input_files
from pipeline.config import (
    PipelineSettings,
    RunSettings,
    default_beam_args,
    default_statistics_skip_train,
)
from pipeline.metadata import connection_config
from pipeline.pipeline import create_pipeline
from pipeline.progress import run_logging
from pipeline.stale_executions import fail_stale_executions


def input_size_bytes(path: str) -> int:
    from tfx.dsl.io import fileio

    return sum(fileio.stat(f).length for f in list_input_files(path))


def run_local(settings: PipelineSettings, run: RunSettings, verbose: bool = False) -> dict:
    """Runs the whole pipeline; returns {log_file, seconds, components: [(name, seconds, cached)]}."""
    os.makedirs(run.output_dir, exist_ok=True)
    log_file = os.path.join(run.output_dir, "logs", f"run-{time.strftime('%Y%m%d-%H%M%S')}.log")
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    with run_logging(log_file, verbose) as progress:
        return _run(settings, run, log_file, progress)


def _run(settings: PipelineSettings, run: RunSettings, log_file: str, progress) -> dict:
    for stale in fail_stale_executions(connection_config(run), run.pipeline_name, run.pipeline_root):
        logging.warning(
            "%s (execution %d) was left unfinished by a run that died: marked FAILED in ML Metadata%s",
            stale.node,
            stale.execution_id,
            f", removed {', '.join(stale.removed)}" if stale.removed else "",
        )
    input_bytes = input_size_bytes(settings.source.path)
    beam_args = run.beam_args or default_beam_args(input_bytes)
    if settings.statistics_skip_train is None:
        skip = default_statistics_skip_train(input_bytes)
        settings = dataclasses.replace(settings, statistics_skip_train=skip)
    pipeline = create_pipeline(
        pipeline_name=run.pipeline_name,
        pipeline_root=run.pipeline_root,
        settings=settings,
        serving_dir=run.serving_dir,
        metadata_connection_config=connection_config(run),
        beam_pipeline_args=list(beam_args),
        enable_cache=run.enable_cache,
    )
    started = time.monotonic()
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as error:
        raise RuntimeError(f"{error}\n(full log: {log_file})") from error
    return {
        "log_file": log_file,
        "seconds": time.monotonic() - started,
        "components": progress.finished,
    }
