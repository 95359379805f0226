"""Runs a compiled Kubeflow Pipelines (v2) spec on this machine, as its pods would: each task's container
command from the spec, as a subprocess, with the ExecutorInput JSON the orchestrator would pass.

Kubeflow and Vertex AI Pipelines start every step as `python -m
tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor --executor_class_path C
--json_serialized_invocation_args {{$}} [beam args]`, where `{{$}}` is the step's ExecutorInput: its input
artifacts (the producers' output URIs and metadata, read back from their executor_output.json), its
parameters (the constants compiled into the spec), its output URIs and the file its executor output goes
to. That path imports every executor by its dotted name in a fresh process and rebuilds every artifact and
parameter from JSON: what a local run never exercises, and where custom components break on a cluster.

Resolver tasks answer nothing, as on a first run (no blessed model yet).

    python -m pipeline.kubeflow_local SPEC.json --work-dir DIR [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"  # kfp's PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER
EXECUTOR_OUTPUT_FILE = "executor_output.json"
ARTIFACT_NAME_PREFIX = "projects/local/locations/local/metadataStores/default/artifacts/"


def _tasks(spec: dict) -> dict:
    return spec["pipelineSpec"]["root"]["dag"]["tasks"]


def _component(spec: dict, task: str) -> dict:
    return spec["pipelineSpec"]["components"][_tasks(spec)[task]["componentRef"]["name"]]


def _executor(spec: dict, task: str) -> dict:
    return spec["pipelineSpec"]["deploymentSpec"]["executors"][_component(spec, task)["executorLabel"]]


def is_resolver(spec: dict, task: str) -> bool:
    return "resolver" in _executor(spec, task)


def dependencies(spec: dict, task: str) -> set[str]:
    """The tasks `task` waits for: its declared dependencies and the producers of its input artifacts."""
    definition = _tasks(spec)[task]
    producers = {
        source["taskOutputArtifact"]["producerTask"]
        for source in definition.get("inputs", {}).get("artifacts", {}).values()
        if "taskOutputArtifact" in source
    }
    return set(definition.get("dependentTasks", ())) | producers


def task_order(spec: dict) -> list[str]:
    """The DAG's tasks in an order where every task follows what it depends on (ties by name)."""
    tasks = _tasks(spec)
    waiting = {task: dependencies(spec, task) for task in tasks}
    for task, needs in waiting.items():
        unknown = needs - set(tasks)
        if unknown:
            raise ValueError(f"pipeline spec: task {task!r} depends on unknown tasks {sorted(unknown)}")
    order: list[str] = []
    while waiting:
        ready = sorted(task for task, needs in waiting.items() if not needs - set(order))
        if not ready:
            raise ValueError(f"pipeline spec: the tasks {sorted(waiting)} depend on each other in a cycle")
        order += ready
        for task in ready:
            del waiting[task]
    return order


def _parameters(spec: dict, task: str) -> tuple[dict, dict]:
    """(parameters, parameterValues) of the ExecutorInput: pipeline spec 2.0 compiles constants as
    `constantValue` (kfp's old Value: stringValue, intValue, doubleValue), 2.1 as `constant` (a protobuf
    Value)."""
    old, new = {}, {}
    for name, source in _tasks(spec)[task].get("inputs", {}).get("parameters", {}).items():
        runtime = source.get("runtimeValue", {})
        if "constantValue" in runtime:
            old[name] = runtime["constantValue"]
        elif "constant" in runtime:
            new[name] = runtime["constant"]
        else:
            raise ValueError(
                f"pipeline spec: parameter {name!r} of task {task!r} is {json.dumps(source)}; only compiled "
                "constants are supported here (no pipeline-level runtime parameters)"
            )
    return old, new


def executor_input(spec: dict, task: str, produced: dict[str, dict[str, list[dict]]], task_dir: str) -> dict:
    """The ExecutorInput (as JSON values) that Kubeflow passes to `task`'s container.

    `produced` maps each finished task to its output artifacts by key, as its executor output recorded them
    (name, uri, metadata); `task_dir` is where this task's outputs and executor output go.
    """
    component = _component(spec, task)
    inputs: dict = {"artifacts": {}}
    definitions = component.get("inputDefinitions", {}).get("artifacts", {})
    for key, source in _tasks(spec)[task].get("inputs", {}).get("artifacts", {}).items():
        producer = source["taskOutputArtifact"]
        artifacts = produced[producer["producerTask"]].get(producer["outputArtifactKey"], [])
        inputs["artifacts"][key] = {
            "artifacts": [{**artifact, "type": definitions[key]["artifactType"]} for artifact in artifacts]
        }
    old, new = _parameters(spec, task)
    if old:
        inputs["parameters"] = old
    if new:
        inputs["parameterValues"] = new
    outputs: dict = {
        "artifacts": {
            key: {
                "artifacts": [
                    {
                        "name": f"{ARTIFACT_NAME_PREFIX}{task}-{key}",
                        "type": definition["artifactType"],
                        "uri": os.path.join(task_dir, key),
                    }
                ]
            }
            for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items()
        },
        "outputFile": os.path.join(task_dir, EXECUTOR_OUTPUT_FILE),
    }
    output_parameters = component.get("outputDefinitions", {}).get("parameters", {})
    if output_parameters:
        outputs["parameters"] = {
            key: {"outputFile": os.path.join(task_dir, "parameters", key)} for key in output_parameters
        }
    value = {"inputs": inputs, "outputs": outputs}
    # Strictly: the entrypoint ignores unknown fields, so a misspelt one would otherwise pass unnoticed.
    json_format.ParseDict(value, pipeline_spec_pb2.ExecutorInput())
    return value


def container_command(spec: dict, task: str, invocation: dict, python: str = sys.executable) -> list[str]:
    """The task's command and args from the spec with `{{$}}` filled; the image's `python` is `python`."""
    container = _executor(spec, task).get("container")
    if container is None:
        raise ValueError(f"pipeline spec: task {task!r} runs no container")
    command = [python if part == "python" else part for part in container.get("command", [])]
    args = []
    for arg in container.get("args", []):
        if "{{$" in arg and arg != EXECUTOR_INPUT_PLACEHOLDER:
            raise ValueError(f"pipeline spec: task {task!r} has a placeholder not supported here: {arg!r}")
        args.append(json.dumps(invocation) if arg == EXECUTOR_INPUT_PLACEHOLDER else arg)
    return command + args


def read_executor_output(path: str) -> dict[str, list[dict]]:
    """The output artifacts (name, uri, metadata) an executor recorded, by key."""
    with open(path, encoding="utf-8") as f:
        output = json.load(f)
    return {key: value.get("artifacts", []) for key, value in output.get("artifacts", {}).items()}


@dataclass
class TaskRun:
    """One task run as a pod would: its command, its files, how long it took."""

    task: str
    command: list[str]
    task_dir: str
    log_path: str
    seconds: float = 0.0
    outputs: dict[str, list[dict]] = field(default_factory=dict)  # from its executor output


class TaskFailed(RuntimeError):
    pass


def run_spec(
    spec_path: str,
    work_dir: str,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
    parallel: int = 1,
    on_done=None,
) -> dict[str, TaskRun]:
    """Runs every container task of the spec under `work_dir`, at most `parallel` at a time, each once its
    inputs exist; resolvers answer nothing. Stops every task it started at the first failure and raises
    TaskFailed with the end of that task's log. `on_done(run)` is called as each task finishes."""
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    order = task_order(spec)
    produced: dict[str, dict[str, list[dict]]] = {}
    for task in order:
        if is_resolver(spec, task):
            produced[task] = {key: [] for key in _component(spec, task)["outputDefinitions"]["artifacts"]}
    pending = [task for task in order if task not in produced]
    # A pod starts with empty output URIs, and the entrypoint reads an executor output already there as a
    # driver's: a second run into the same directory would not be the run a pod does.
    used = [task for task in pending if os.path.exists(os.path.join(work_dir, task))]
    if used:
        raise ValueError(f"{work_dir} already holds outputs of {used}: give a new work directory")
    runs: dict[str, TaskRun] = {}
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    os.makedirs(os.path.join(work_dir, "logs"), exist_ok=True)
    try:
        while pending or running:
            for task in list(pending):
                if len(running) >= parallel:
                    break
                if dependencies(spec, task) - set(produced):
                    continue
                pending.remove(task)
                task_dir = os.path.join(work_dir, task)
                invocation = executor_input(spec, task, produced, task_dir)
                log_path = os.path.join(work_dir, "logs", f"{task}.log")
                run = runs[task] = TaskRun(
                    task, container_command(spec, task, invocation, python), task_dir, log_path
                )
                with open(run.log_path, "wb") as log:
                    process = subprocess.Popen(  # cwd outside the repository: nothing may rely on it
                        run.command, env=env, cwd=work_dir, stdout=log, stderr=subprocess.STDOUT
                    )
                running[task] = (process, time.monotonic())
            if not running:
                raise ValueError(f"pipeline spec: tasks {pending} wait for inputs no task produces")
            time.sleep(0.2)
            for task, (process, started) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[task]
                run = runs[task]
                run.seconds = time.monotonic() - started
                output_file = os.path.join(run.task_dir, EXECUTOR_OUTPUT_FILE)
                if process.returncode != 0 or not os.path.isfile(output_file):
                    with open(run.log_path, encoding="utf-8", errors="replace") as log:
                        tail = log.read()[-4000:]
                    raise TaskFailed(
                        f"task {task} exited with {process.returncode}"
                        + ("" if os.path.isfile(output_file) else f" and wrote no {output_file}")
                        + f"; the end of {run.log_path}:\n{tail}"
                    )
                run.outputs = produced[task] = read_executor_output(output_file)
                if on_done is not None:
                    on_done(run)
    finally:
        for process, _ in running.values():
            process.kill()
            process.wait()
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.kubeflow_local", description=__doc__.split("\n")[0]
    )
    parser.add_argument("spec", help="the pipeline spec `pin2vec compile --kubeflow` wrote")
    parser.add_argument("--work-dir", required=True, help="where each task's outputs and log go")
    parser.add_argument("--parallel", type=int, default=1, help="tasks run at once (default 1)")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    env.setdefault("TF_USE_LEGACY_KERAS", "1")  # as the image sets it
    report = lambda run: print(f"{run.task}: done in {run.seconds:.1f}s", flush=True)  # noqa: E731
    try:
        run_spec(args.spec, os.path.abspath(args.work_dir), env=env, parallel=args.parallel, on_done=report)
    except (TaskFailed, ValueError) as error:
        print(f"pipeline.kubeflow_local: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
