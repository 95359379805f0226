"""The RelatedEvaluator alone, again, on a finished run's inputs: its time and peak memory without the steps
before it in the same process, or its figures with changed evaluator code, without rerunning the pipeline.

The inputs, settings and code version are read from the run's ML Metadata (its last RelatedEvaluator
execution); the outputs go to a new directory, and nothing is recorded in ML Metadata or pushed.

    python -m bench.rerun_related_evaluator --run-dir work/runs/ml-100k --out /tmp/evaluation-again
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact_utils

from pipeline.config import DEFAULT_PIPELINE_NAME, RunSettings
from pipeline.metadata import connection_config, pipeline_executions


def last_execution(store: metadata_store.MetadataStore, pipeline_name: str, node: str):
    """The newest execution of the pipeline's `node` that ran (not a cache hit), or None."""
    ran = metadata_store_pb2.Execution.COMPLETE
    executions = [
        e for n, e in pipeline_executions(store, pipeline_name) if n == node and e.last_known_state == ran
    ]
    return max(executions, key=lambda e: e.id) if executions else None


def executor_arguments(store: metadata_store.MetadataStore, execution, out_dir: str) -> tuple:
    """(input dict, output dict with URIs under out_dir, exec properties) of an execution, for Do()."""
    events = store.get_events_by_execution_ids([execution.id])
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    artifact_types = {t.id: t for t in store.get_artifact_types()}
    inputs: dict[str, list] = {}
    outputs: dict[str, list] = {}
    for event in events:
        key = event.path.steps[0].key
        stored = artifacts[event.artifact_id]
        artifact = artifact_utils.deserialize_artifact(artifact_types[stored.type_id], stored)
        if event.type == metadata_store_pb2.Event.INPUT:
            inputs.setdefault(key, []).append(artifact)
        elif event.type == metadata_store_pb2.Event.OUTPUT:
            artifact.uri = os.path.join(out_dir, key)
            os.makedirs(artifact.uri, exist_ok=True)
            outputs.setdefault(key, []).append(artifact)
    properties = {
        name: value.string_value or value.int_value
        for name, value in execution.custom_properties.items()
        if not name.startswith("__")
    }
    return inputs, outputs, properties


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--run-dir", required=True, help="a `pin2vec run --output-dir` that finished")
    parser.add_argument("--out", required=True, help="a new directory for the evaluation and blend outputs")
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME, help="as given to `pin2vec run`")
    args = parser.parse_args(argv)
    run = RunSettings(output_dir=args.run_dir, pipeline_name=args.pipeline_name)
    if not os.path.isfile(run.sqlite_path):
        parser.error(f"--run-dir {args.run_dir}: no {run.sqlite_path} (expected a finished local run)")
    if os.path.exists(args.out) and os.listdir(args.out):
        parser.error(f"--out {args.out} is not empty: name a new directory")
    store = metadata_store.MetadataStore(connection_config(run))
    execution = last_execution(store, run.pipeline_name, "RelatedEvaluator")
    if execution is None:
        parser.error(f"--run-dir {args.run_dir}: its ML Metadata has no RelatedEvaluator execution")
    inputs, outputs, properties = executor_arguments(store, execution, args.out)

    from components.related_evaluator.executor import Executor  # TensorFlow: after the argument checks

    started = time.perf_counter()
    Executor().Do(inputs, outputs, properties)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(
        f"RelatedEvaluator alone on {args.run_dir}: {time.perf_counter() - started:.0f} s, peak resident "
        f"{peak / 1e9:.2f} GB; evaluation.json under {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
