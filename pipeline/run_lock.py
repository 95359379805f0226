"""One `pin2vec run` per output directory at a time: an advisory `flock` on `<output-dir>/.pin2vec.lock`.

Two runs writing into one output directory interleave their pushes, their ML Metadata records and their
summaries. The lock is the kernel's: it is released when the holder's process ends, however it ends (a
SIGKILL included), so a crashed run never blocks the next one. The file also holds a JSON record of the
holder (pid, host, start time, command line), for the message the next run prints; the record alone decides
nothing, a record left behind by a killed holder is simply overwritten.

Pure standard library, so that `pin2vec run` can take the lock before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

LOCK_FILE = ".pin2vec.lock"
_RECORD_READ_TRIES = 20  # a holder writes its record right after taking the lock: a short wait sees it


class RunLockHeld(RuntimeError):
    """Another run holds the output directory (a RuntimeError: the CLI reports it without a traceback)."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) the lock: the record written into the lock file."""

    pid: int
    host: str
    started: float  # seconds since the epoch
    command: list[str] = field(default_factory=list)

    @classmethod
    def this_process(cls) -> Holder:
        return cls(pid=os.getpid(), host=socket.gethostname(), started=time.time(), command=list(sys.argv))

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"pid {self.pid} on host {self.host}, started {started}"


def lock_path(output_dir: str) -> str:
    return os.path.join(output_dir, LOCK_FILE)


def held_message(output_dir: str, holder: Holder | None) -> str:
    who = f" ({holder.describe()})" if holder else ""
    return f"another pin2vec run{who} holds {output_dir}; wait for it, or rerun with --wait"


def waiting_message(output_dir: str, holder: Holder | None) -> str:
    who = f" ({holder.describe()})" if holder else ""
    return f"pin2vec: waiting for another pin2vec run{who} to finish with {output_dir} ..."


def _read_holder(fd: int) -> Holder | None:
    """The holder's record; None when there is none yet (or it cannot be read)."""
    for _ in range(_RECORD_READ_TRIES):
        text = os.pread(fd, 64 * 1024, 0).decode("utf-8", errors="replace")
        try:
            record = json.loads(text)
            return Holder(
                pid=int(record["pid"]),
                host=str(record["host"]),
                started=float(record["started"]),
                command=[str(a) for a in record.get("command", [])],
            )
        except (ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return None


def _write_holder(fd: int, holder: Holder) -> None:
    data = json.dumps(asdict(holder)).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


@contextlib.contextmanager
def run_lock(
    output_dir: str,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
    holder: Holder | None = None,
) -> Iterator[Holder]:
    """Holds `output_dir`'s lock for the block; yields this run's record.

    Raises RunLockHeld at once when another process holds it, or, with `wait`, calls `on_wait` once with a
    message naming the holder and blocks until the lock is free.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = lock_path(output_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by exec'd children (O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_holder(fd)
            if not wait:
                raise RunLockHeld(held_message(output_dir, other)) from None
            if on_wait is not None:
                on_wait(waiting_message(output_dir, other))
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = holder or Holder.this_process()
        _write_holder(fd, me)
        try:
            yield me
        finally:
            os.ftruncate(fd, 0)  # a clean release leaves no record; the kernel drops the lock on close
    finally:
        os.close(fd)
