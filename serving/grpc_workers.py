"""Extra gRPC worker processes on the server's own port, so gRPC uses more than one core.

One Python process answers gRPC on one core at a time (the GIL). With `--grpc-workers N` the server starts
N-1 worker processes that bind the same address with SO_REUSEPORT; the kernel spreads incoming connections
over the N listening sockets (per connection, not per request: many clients or channels spread evenly).
Each worker loads and polls the model base on its own, exactly as the main process does, so versions swap
in every process within one poll of each other. The main process keeps REST. Each worker holds its own copy
of the models in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading

from formats.settings_codec import decode_settings, encode_settings

log = logging.getLogger("pin2vec.serving")
READY_TIMEOUT_S = 600.0  # a worker imports TensorFlow and loads every model before it is ready


def settings_to_json(settings) -> str:
    return encode_settings(settings)


def settings_from_json(text: str):
    from serving.server import ServerSettings

    return decode_settings(ServerSettings, text, "grpc worker settings")


class GrpcWorkers:
    """The worker processes of one server: started, ready, stopped together."""

    def __init__(self, processes: list[subprocess.Popen]):
        self.processes = processes

    @classmethod
    def start(cls, settings, grpc_port: int, count: int, access_log_path: str | None) -> GrpcWorkers:
        """Starts `count` workers on `grpc_port` and returns once all of them are serving."""
        settings = dataclasses.replace(settings, grpc_port=grpc_port, grpc_workers=1)
        command = [sys.executable, "-m", "serving.grpc_workers", settings_to_json(settings)]
        if access_log_path:
            command.append(access_log_path)
        processes = [
            subprocess.Popen(
                command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
            for _ in range(count)
        ]
        workers = cls(processes)
        try:
            for number, process in enumerate(processes, start=1):
                line = _read_line(process, READY_TIMEOUT_S)
                if not line:
                    raise RuntimeError(
                        f"gRPC worker {number} (pid {process.pid}) exited with {process.wait()} before "
                        "it was ready; its error is above"
                    )
                log.info("gRPC worker %d (pid %d) serving on port %d", number, process.pid, grpc_port)
        except BaseException:
            workers.stop(0)
            raise
        return workers

    def stop(self, grace_s: float) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=grace_s + 5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_line(process: subprocess.Popen, timeout_s: float) -> str:
    """The process's first stdout line ('' if it exits first); kills it when none comes in `timeout_s`."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if reader.is_alive():
        process.kill()
        raise TimeoutError(f"gRPC worker pid {process.pid} was not ready within {timeout_s:.0f} s")
    return lines[0]


async def _serve_worker(settings, parent_pid: int) -> None:
    from serving.server import build_grpc_server, build_registry

    registry = build_registry(settings)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, registry.start, settings.poll_seconds)
    server, port = build_grpc_server(settings, registry, reuse_port=True)
    await server.start()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"event": "ready", "pid": os.getpid(), "grpc_port": port}), flush=True)
    while not stop.is_set() and os.getppid() == parent_pid:  # the server went away: so does its worker
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    await server.stop(settings.shutdown_grace_s)
    registry.stop()


def main(argv: list[str]) -> int:
    from serving.server import configure_logging, run_loop

    settings = settings_from_json(argv[0])
    handler = configure_logging(argv[1] if len(argv) > 1 else None)
    sys.setswitchinterval(settings.gil_switch_interval_s)
    try:
        run_loop(_serve_worker(settings, os.getppid()), settings.event_loop)
    finally:
        handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
