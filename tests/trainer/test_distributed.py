"""ParameterServerStrategy path: TF_CONFIG parsing, and a real local cluster of worker and ps processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.loopback_ports import free_loopback_ports
from trainer_module.distributed import parameter_server_task

REPO = Path(__file__).resolve().parents[2]


def _config(task_type="chief", index=0, **cluster):
    cluster = cluster or {"chief": ["h:1"], "worker": ["h:2"], "ps": ["h:3", "h:4"]}
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def test_single_process_without_tf_config_or_ps_tasks():
    assert parameter_server_task(None) is None
    assert parameter_server_task("") is None
    assert parameter_server_task(_config(chief=["h:1"], worker=["h:2", "h:3"])) is None  # no ps: not ours


def test_parameter_server_cluster_is_recognised():
    task = parameter_server_task(_config("ps", 1))
    assert (task.task_type, task.task_index, task.num_ps, task.num_workers) == ("ps", 1, 2, 1)


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "not valid JSON"),
        (_config(worker=["h:2"], ps=["h:3"]), "no chief"),
        (_config(chief=["h:1"], ps=["h:3"]), "no worker"),
        (_config("evaluator"), "chief, worker or ps"),
        (_config("ps", 5), "out of range"),
    ],
)
def test_bad_tf_config_fails_loudly(tf_config, message):
    with pytest.raises(ValueError, match=message):
        parameter_server_task(tf_config)


def test_trains_on_a_local_cluster_of_worker_and_ps_processes(tmp_path):
    chief, worker, ps0, ps1 = (f"127.0.0.1:{p}" for p in free_loopback_ports(4))
    cluster = {"chief": [chief], "worker": [worker], "ps": [ps0, ps1]}
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))

    def spawn(task_type, index, module, *args):
        task = {"cluster": cluster, "task": {"type": task_type, "index": index}}
        log = open(tmp_path / f"{task_type}{index}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=dict(env, TF_CONFIG=json.dumps(task)),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return process, log

    servers = [spawn("worker", 0, "trainer_module.distributed")]
    servers += [spawn("ps", i, "trainer_module.distributed") for i in range(2)]
    try:
        started = time.monotonic()
        coordinator, log = spawn("chief", 0, "tests.trainer.ps_chief", str(tmp_path))
        try:
            code = coordinator.wait(timeout=300)
        finally:
            log.close()
        assert code == 0, (tmp_path / "chief0.log").read_text()[-3000:]
        for process, _ in servers:  # the servers serve until stopped: none may have died
            assert process.poll() is None, f"a server exited early with {process.returncode}"
    finally:
        for process, server_log in servers:
            process.kill()
            process.wait(timeout=30)
            server_log.close()
    result = json.loads((tmp_path / "result.json").read_text())
    losses = result["history"]["loss"]
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0], losses
    assert len(result["history"]["val_loss"]) == 4
    assert result["shards"] == 2  # the item table really was split over both ps tasks
    assert result["planted_top1"] > 0.8
    assert time.monotonic() - started < 300
