"""The Transform stage alone: the stock TFX Transform executor, configured exactly as `create_pipeline`
configures it, over the Examples of an earlier run, timed; then the sha256 of each vocabulary file it wrote,
so that two variants can be compared byte for byte.

    python -m bench.bench_transform --examples RUN/pipeline/SessionExampleGen/examples/N \
        --schema RUN/pipeline/ImportSchemaGen/schema/M --output /scratch/transform [--repeat 3]

`--preprocessing-fn` runs another function in its place (e.g. an older variant kept in a scratch module),
`--beam-arg` replaces the Beam options (default: what `default_beam_args` picks for `--input-bytes`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import time

from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_artifacts

from components.session_example_gen.session_settings import EventSource
from pipeline.config import PipelineSettings, default_beam_args
from pipeline.pipeline import create_pipeline


def transform_node(preprocessing_fn: str | None):
    """The pipeline's own Transform component (its exec properties and outputs), from `create_pipeline`."""
    settings = PipelineSettings(source=EventSource(path="unused"))
    pipeline = create_pipeline("bench", "/nonexistent", settings, "/nonexistent", input_fingerprint="bench")
    node = next(c for c in pipeline.components if c.id == "Transform")
    properties = dict(node.exec_properties)
    if preprocessing_fn:
        properties["preprocessing_fn"] = preprocessing_fn
    return node, properties


def run_transform(examples_uri: str, schema_uri: str, output_dir: str, beam_args: list[str], fn: str | None):
    """Runs the executor once into a fresh `output_dir`; returns (seconds, CPU seconds, {asset: sha256})."""
    node, properties = transform_node(fn)
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = artifact_utils.encode_split_names(
        sorted(d[len("Split-") :] for d in os.listdir(examples_uri) if d.startswith("Split-"))
    )
    schema = standard_artifacts.Schema()
    schema.uri = schema_uri
    shutil.rmtree(output_dir, ignore_errors=True)
    outputs = {}
    for key, channel in node.outputs.items():
        artifact = channel.type()
        artifact.uri = os.path.join(output_dir, key)
        os.makedirs(artifact.uri)
        outputs[key] = [artifact]
    executor = node.executor_spec.executor_class(
        BaseBeamExecutor.Context(beam_pipeline_args=beam_args, tmp_dir=os.path.join(output_dir, "tmp"))
    )
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    executor.Do({"examples": [examples], "schema": [schema]}, outputs, properties)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    assets = os.path.join(outputs["transform_graph"][0].uri, "transform_fn", "assets")
    digests = {}
    for name in sorted(os.listdir(assets)):
        with open(os.path.join(assets, name), "rb") as f:
            digests[name] = hashlib.sha256(f.read()).hexdigest()
    return seconds, cpu, digests


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children: the DirectRunner's work, in memory or
    in worker processes, less sensitive than wall time to other work on a shared machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--examples", required=True, help="an Examples artifact directory (Split-* inside)")
    parser.add_argument("--schema", required=True, help="a Schema artifact directory (schema.pbtxt inside)")
    parser.add_argument("--output", required=True, help="scratch directory for the Transform outputs")
    parser.add_argument("--preprocessing-fn", help="dotted path; default: the pipeline's")
    parser.add_argument("--beam-arg", action="append", help="Beam option (repeatable)")
    parser.add_argument("--input-bytes", type=int, default=0, help="log size that picks the Beam options")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    beam_args = args.beam_arg or list(default_beam_args(args.input_bytes))
    seconds = []
    for _ in range(args.repeat):
        took, cpu, digests = run_transform(
            args.examples, args.schema, args.output, beam_args, args.preprocessing_fn
        )
        seconds.append(took)
        load = round(os.getloadavg()[0], 1)
        print(
            json.dumps(
                {"seconds": round(took, 1), "cpu_seconds": round(cpu, 1), "load": load, "assets": digests}
            )
        )
    print(json.dumps({"median_seconds": round(statistics.median(seconds), 1), "beam_args": beam_args}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
