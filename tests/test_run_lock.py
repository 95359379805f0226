"""One `pin2vec run` per output directory: a second run is refused at once, or waits with --wait; a killed
holder blocks nobody."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline import cli
from pipeline.run_lock import LOCK_FILE, Holder, RunLockHeld, held_message, run_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Takes the lock, says so, and holds it until its stdin closes or sends a line.
HOLDER = (
    "import sys; from pipeline.run_lock import run_lock\n"
    "with run_lock(sys.argv[1]):\n"
    "    print('locked', flush=True)\n"
    "    sys.stdin.readline()\n"
)


@pytest.fixture
def holder(tmp_path):
    """A separate process holding tmp_path/out's lock."""
    out = str(tmp_path / "out")
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, out],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert process.stdout.readline().strip() == "locked"
    yield process, out
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def test_a_second_run_is_refused_at_once_naming_the_holder(holder, tmp_path):
    process, out = holder
    log = tmp_path / "events.csv"
    log.write_text("user_id,item_id,timestamp\nu,i,1\nu,j,2\n")
    probe = (
        "import sys; from pipeline import cli; code = cli.main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; sys.exit(code)"
    )
    command = [sys.executable, "-c", probe, "run", "--events", str(log), "--output-dir", out]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1, done.stderr[-2000:]
    assert time.monotonic() - started < 60  # no TensorFlow, no pipeline: refused before either
    assert f"another pin2vec run (pid {process.pid} on host " in done.stderr
    assert f"holds {out}; wait for it, or rerun with --wait" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(out)) == [LOCK_FILE]  # the refused run wrote nothing
    assert process.poll() is None  # and the holder runs on


def test_in_process_refusal_raises_a_runtime_error_with_the_record(holder):
    process, out = holder
    pattern = rf"pid {process.pid} on host .*, started \d{{4}}-\d\d-\d\d "
    with pytest.raises(RunLockHeld, match=pattern), run_lock(out):
        pass
    assert isinstance(RunLockHeld("x"), RuntimeError)  # cli.main reports it as `error:`, exit code 1


def test_wait_acquires_once_the_holder_releases(holder):
    process, out = holder
    messages = []

    def release_when_told(message):
        messages.append(message)
        process.stdin.write("done\n")  # the holder leaves its block and exits
        process.stdin.flush()

    with run_lock(out, wait=True, on_wait=release_when_told) as me:
        assert process.wait(timeout=30) == 0
        with open(os.path.join(out, LOCK_FILE)) as f:
            assert json.load(f)["pid"] == me.pid == os.getpid()
    assert len(messages) == 1
    assert f"waiting for another pin2vec run (pid {process.pid} on host " in messages[0]
    with open(os.path.join(out, LOCK_FILE)) as f:
        assert f.read() == ""  # released cleanly: no record left


def test_a_holder_killed_with_sigkill_blocks_nobody(holder):
    process, out = holder
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with open(os.path.join(out, LOCK_FILE)) as f:
        assert json.load(f)["pid"] == process.pid  # its record is left behind ...
    started = time.monotonic()
    with run_lock(out) as me:  # ... and means nothing: the kernel released the lock
        assert me.pid == os.getpid()
    assert time.monotonic() - started < 5


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with run_lock(str(tmp_path)), pytest.raises(RunLockHeld), run_lock(str(tmp_path)):
        pass
    with run_lock(str(tmp_path)):
        pass


def test_held_message_format():
    holder = Holder(pid=1234, host="X", started=1796334002.0, command=["pin2vec", "run"])
    assert held_message("/runs/a", holder) == (
        "another pin2vec run (pid 1234 on host X, started 2026-12-03 21:40:02 UTC) holds /runs/a; "
        "wait for it, or rerun with --wait"
    )


def test_run_parses_wait():
    assert cli.build_parser().parse_args(["run", "--events", "x", "--wait"]).wait is True
    assert cli.build_parser().parse_args(["run", "--events", "x"]).wait is False
