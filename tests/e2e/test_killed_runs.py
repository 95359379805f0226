"""Runs killed for real (SIGKILL mid-Trainer; os._exit in the pusher right after its commit), then rerun: each
rerun completes, serving never shows a partial version, and ML Metadata keeps no execution RUNNING."""

import os
import signal
import subprocess
import sys
import time

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from formats import push_records
from pipeline.config import RunSettings
from pipeline.metadata import connection_config
from tests.e2e.tiny_log import write_tiny_log

pytestmark = pytest.mark.e2e
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNFINISHED = (mlmd.Execution.NEW, mlmd.Execution.RUNNING)


def _command(log, output_dir):
    return [
        sys.executable, "-m", "pipeline.cli", "run", "--events", str(log), "--output-dir", str(output_dir),
        "--min-count", "3", "--epochs", "2", "--embedding-dim", "16", "--negatives", "8",
        "--batch-size", "64", "--min-index-recall", "0.5", "--beam-arg=--runner=DirectRunner",
    ]  # fmt: skip


def _unfinished(output_dir):
    store = metadata_store.MetadataStore(connection_config(RunSettings(output_dir=str(output_dir))))
    return [e for e in store.get_executions() if e.last_known_state in UNFINISHED]


def test_killed_runs_are_finished_by_the_rerun_and_never_served_partly(tmp_path):
    log, output_dir, serving = tmp_path / "events.tsv", tmp_path / "out", tmp_path / "out" / "serving"
    write_tiny_log(log)
    # 1. SIGKILL while the Trainer runs.
    process = subprocess.Popen(
        _command(log, output_dir), cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    for line in process.stderr:
        if "> Trainer ..." in line:
            break
    # The progress line comes just before the launcher registers the execution: kill once it is RUNNING.
    deadline = time.monotonic() + 60
    while not _unfinished(output_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert _unfinished(output_dir), "the kill left nothing unfinished: it came too late to test anything"
    assert not push_records.committed(str(serving))  # nothing pushed, nothing visible

    # 2. Killed in the pusher right after its commit record, before embedding/ is renamed into place.
    env = {**os.environ, "PIN2VEC_KILL_AT": "after-commit"}
    killed = subprocess.run(_command(log, output_dir), cwd=REPO, env=env, capture_output=True, text=True)
    assert killed.returncode == 137, killed.stderr[-3000:]
    [version] = push_records.committed(str(serving))
    assert not (serving / "embedding" / str(version)).exists()
    assert (serving / "pin2vec" / str(version)).is_dir()

    # 3. The rerun completes the version: the same number, the embedding published, nothing left RUNNING.
    rerun = subprocess.run(_command(log, output_dir), cwd=REPO, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert list(push_records.committed(str(serving))) == [version]
    push_records.check_model_version(str(serving / "embedding" / str(version)))
    assert _unfinished(output_dir) == []
