"""The compiled Kubeflow spec, run as its pods would run it: each task's container command from the spec
(TFX's kubeflow_v2_run_executor) in its own process, with the ExecutorInput JSON Kubeflow would pass, the
DAG walked in order so that each step reads what the steps before it wrote (pipeline/kubeflow_local.py).
This is where custom components break on a cluster and never locally: executors imported by dotted name in
a fresh process, artifacts and parameters rebuilt from JSON."""

import json
import os
import sys
import time

import pytest

from pipeline.config import IN_PROCESS_BEAM_ARGS, RunSettings
from pipeline.kubeflow_local import EXECUTOR_OUTPUT_FILE, is_resolver, run_spec
from pipeline.kubeflow_runner import compile_kubeflow
from tests.e2e.conftest import tiny_settings
from tests.e2e.expected import COMPONENTS_WITH_COLLECTIONS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The pusher publishes into the serving directory; its artifact only records where (in its properties).
MAY_BE_EMPTY = {("RelatedPusher", "pushed_model")}


def _files_under(path: str) -> list[str]:
    return [os.path.join(root, name) for root, _, names in os.walk(path) for name in names]


@pytest.mark.kubeflow  # 14 processes, each importing TensorFlow and TFX: 712 s on 2 busy cores
def test_every_task_of_the_compiled_spec_runs_its_container_command(tmp_path):
    settings = tiny_settings(tmp_path)
    run = RunSettings(output_dir=str(tmp_path / "out"), beam_args=IN_PROCESS_BEAM_ARGS)
    spec_path = compile_kubeflow(settings, run, str(tmp_path / "pin2vec.json"), image="example/pin2vec:1")
    spec = json.loads((tmp_path / "pin2vec.json").read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    containers = {task for task in tasks if not is_resolver(spec, task)}
    assert containers == COMPONENTS_WITH_COLLECTIONS

    # The image's environment: the package importable (installed there), Keras 2 (its ENV); no working
    # directory to lean on (each task runs in the work directory).
    env = dict(os.environ, PYTHONPATH=REPO, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    started = time.monotonic()
    done = []
    runs = run_spec(
        spec_path, str(tmp_path / "kfp"), env=env, python=sys.executable, parallel=2, on_done=done.append
    )
    seconds = time.monotonic() - started
    print(f"\n{len(runs)} tasks in {seconds:.0f}s: " + ", ".join(f"{r.task} {r.seconds:.0f}s" for r in done))

    assert set(runs) == containers
    for task, task_run in runs.items():
        executor = spec["pipelineSpec"]["deploymentSpec"]["executors"][f"{task}_executor"]["container"]
        assert (
            task_run.command[1:3]
            == executor["command"][1:3]
            == ["-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
        )
        assert "--runner=DirectRunner" in task_run.command  # the compiled Beam args reach every step
        assert os.path.isfile(os.path.join(task_run.task_dir, EXECUTOR_OUTPUT_FILE))
        expected = spec["pipelineSpec"]["components"][task].get("outputDefinitions", {}).get("artifacts", {})
        assert set(task_run.outputs) == set(expected), task
        for key, artifacts in task_run.outputs.items():
            (artifact,) = artifacts
            assert artifact["uri"] == os.path.join(task_run.task_dir, key)
            assert artifact["name"].endswith(f"{task}-{key}")
            if (task, key) not in MAY_BE_EMPTY:
                assert _files_under(artifact["uri"]), f"{task} wrote nothing under its {key} output"

    # Properties survive the JSON round trips: what a producer records reaches its consumers.
    examples = runs["SessionExampleGen"].outputs["examples"][0]
    assert {"train", "eval", "test"} <= set(json.loads(examples["metadata"]["split_names"]))
    model = runs["Trainer"].outputs["model"][0]
    assert os.path.isfile(os.path.join(model["uri"], "Format-Serving", "saved_model.pb"))
    assert model["metadata"]["warm_start"] == 0 and model["metadata"]["items_new"] > 0  # no base model
    blessing = runs["Evaluator"].outputs["blessing"][0]["metadata"]
    assert blessing["blessed"] == 1  # no baseline on a first run: the absolute floor only
    assert blessing["current_model_id"] == model["name"]  # the model's id back to its Kubeflow name
    pushed = runs["RelatedPusher"].outputs["pushed_model"][0]["metadata"]
    assert pushed["pushed"] == 1 and pushed["pushed_destination"] == run.serving_dir
    assert {"pin2vec", "cooccurrence", "board", "coldstart"} <= set(os.listdir(run.serving_dir))
