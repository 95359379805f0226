"""Runs `create_pipeline()` with LocalDagRunner and the Beam DirectRunner: paths and runner config only."""

from __future__ import annotations

import datetime
import logging
import os
import time

from tfx import v1 as tfx
from tfx.dsl.compiler import constants as compiler_constants
from tfx.orchestration.portable import runtime_parameter_utils

from components.session_example_gen import spans_lib
from components.session_example_gen.input_files import list_input_files
from pipeline.beam_staging import no_package_staging_for_local_workers
from pipeline.config import (
    PipelineSettings,
    RunSettings,
    default_beam_args,
    with_input_size_defaults,
)
from pipeline.disk_full import reraise_if_disk_full
from pipeline.metadata import check_store, connection_config
from pipeline.pipeline import create_pipeline
from pipeline.progress import run_logging
from pipeline.stale_executions import fail_stale_executions


def input_files(path: str, num_spans: int | None = None) -> list[str]:
    """The files a run reads: those of the spans a pattern resolves to now (the component's driver resolves
    the same at run time), else the file, directory or glob."""
    if spans_lib.has_span_spec(path):
        range_config = None if num_spans is None else spans_lib.rolling_range(num_spans)
        return list(spans_lib.resolve_pattern(path, range_config).files)
    return list_input_files(path)


def input_size_bytes(path: str, num_spans: int | None = None) -> int:
    from tfx.dsl.io import fileio

    return sum(fileio.stat(f).length for f in input_files(path, num_spans))


class _KnownRunIdRunner(tfx.orchestration.LocalDagRunner):
    """LocalDagRunner with a pipeline run id chosen by the caller (LocalDagRunner picks and forgets one), so
    that the run's ML Metadata records can be told from other runs' (its `pipeline_run` context is named so).
    """

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id

    def run_with_ir(self, pipeline, run_options=None):
        # LocalDagRunner substitutes its own id only where the parameter is still unset.
        runtime_parameter_utils.substitute_runtime_parameter(
            pipeline, {compiler_constants.PIPELINE_RUN_ID_PARAMETER_NAME: self.run_id}
        )
        return super().run_with_ir(pipeline, run_options=run_options)


def log_file_name(started: float, pid: int) -> str:
    """Unique per run: start time and process id."""
    return f"run-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{pid}.log"


def run_local(settings: PipelineSettings, run: RunSettings, verbose: bool = False) -> dict:
    """Runs the whole pipeline; returns {run_id, log_file, seconds, components: [(name, seconds, cached)]}.
    A full disk raises DiskFullError naming the path and the space left, whichever layer ran out."""
    try:
        os.makedirs(run.output_dir, exist_ok=True)
        started = time.time()
        log_file = os.path.join(run.output_dir, "logs", log_file_name(started, os.getpid()))
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        run_id = datetime.datetime.fromtimestamp(started).isoformat()  # LocalDagRunner's format
        with run_logging(log_file, verbose) as progress:
            return _run(settings, run, log_file, progress, run_id)
    except Exception as error:
        reraise_if_disk_full(error, run.output_dir, None if run.mysql else run.sqlite_path)
        raise


def _run(settings: PipelineSettings, run: RunSettings, log_file: str, progress, run_id: str) -> dict:
    check_store(run)
    for stale in fail_stale_executions(connection_config(run), run.pipeline_name, run.pipeline_root):
        logging.warning(
            "%s (execution %d) was left unfinished by a run that died: marked FAILED in ML Metadata%s",
            stale.node,
            stale.execution_id,
            f", removed {', '.join(stale.removed)}" if stale.removed else "",
        )
    input_bytes = input_size_bytes(settings.source.path, settings.num_spans)
    beam_args = run.beam_args or default_beam_args(input_bytes)
    settings = with_input_size_defaults(settings, input_bytes, size_eval_user_share=False)
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
        with no_package_staging_for_local_workers(beam_args):
            _KnownRunIdRunner(run_id).run(pipeline)
    except Exception as error:
        raise RuntimeError(f"{error}\n(full log: {log_file})") from error
    return {
        "run_id": run_id,
        "log_file": log_file,
        "seconds": time.monotonic() - started,
        "components": progress.finished,
    }
