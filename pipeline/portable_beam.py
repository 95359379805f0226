"""Beam's portable path on one machine: its job service and an external SDK worker pool, on loopback only.

Flink, Spark and Dataflow run a pipeline through Beam's Fn API: every DoFn, CombineFn and side input is
pickled, sent to an SDK worker process and run there, and nothing is shared with the process that launched
the pipeline. Beam's Python job service with an external worker pool takes that same path on one machine, so
`pin2vec run` can be checked on it without a cluster (tests/e2e/test_portable_runner.py,
`make demo-portable`).

Beam's servers have no flag for the address they bind: the worker pool and the job service's runner (control,
data, state and logging) bind every interface (`[::]`), so anyone on the network could submit code or talk
to a worker. These processes bind `localhost` instead (`bind_loopback_only`).

    python -m pipeline.portable_beam run -- pin2vec run --events ... --output-dir ...
starts both services, runs the command with the Beam options that use them appended, and stops both.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

WILDCARD_HOSTS = ("[::]", "0.0.0.0", "")
MODULE = "pipeline.portable_beam"
READY_SECONDS = 120.0  # a loaded machine takes a while to import Beam


def bind_loopback_only() -> None:
    """Every gRPC server this process creates from now on binds `localhost` where Beam asked for every
    interface (Beam hard-codes `[::]` in the worker pool and in the runner's Fn API servers)."""
    import grpc

    if getattr(grpc.server, "loopback_only", False):
        return
    create_server = grpc.server

    def loopback_server(*args, **kwargs):
        server = create_server(*args, **kwargs)
        add_insecure_port = server.add_insecure_port

        def add_loopback_port(address: str) -> int:
            host, _, port = address.rpartition(":")
            return add_insecure_port(f"localhost:{port}" if host in WILDCARD_HOSTS else address)

        server.add_insecure_port = add_loopback_port
        return server

    loopback_server.loopback_only = True
    grpc.server = loopback_server


def _write_port(port_file: str, port: int) -> None:
    """Atomically, so that a reader never sees half a number: the file's presence means 'ready'."""
    with open(port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)


def serve_job_service(port: int, port_file: str, staging_dir: str | None = None) -> None:
    """Beam's Python job service (`local_job_service_main`), bound to loopback; runs until killed."""
    bind_loopback_only()
    from apache_beam.runners.portability import local_job_service

    logging.basicConfig(level=logging.INFO)

    servicer = local_job_service.LocalJobServicer(staging_dir)
    _write_port(port_file, servicer.start_grpc_server(port))
    _sleep_until_stopped()


def serve_worker_pool(port: int, port_file: str) -> None:
    """Beam's external worker pool (`worker_pool_main`): one SDK worker process per job, bound to loopback."""
    bind_loopback_only()
    from apache_beam.runners.worker import worker_pool_main

    address, _server = worker_pool_main.BeamFnExternalWorkerPoolServicer.start(use_process=True, port=port)
    _write_port(port_file, int(address.rsplit(":", 1)[1]))
    _sleep_until_stopped()


def _sleep_until_stopped() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run atexit handlers: the pool stops its workers
    while True:
        time.sleep(3600)


@dataclasses.dataclass(frozen=True)
class PortableServices:
    job_port: int
    worker_pool_port: int
    log_dir: str
    process_groups: tuple[int, ...] = ()  # one per service, holding the SDK workers it starts

    @property
    def beam_args(self) -> tuple[str, ...]:
        """The Beam options that run a pipeline through these services (what `--beam-arg` takes)."""
        return (
            "--runner=PortableRunner",
            f"--job_endpoint=localhost:{self.job_port}",
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{self.worker_pool_port}",
        )


def service_environment() -> dict[str, str]:
    """The pool starts each SDK worker as `python` from PATH: make that this interpreter, with this project
    importable (the workers unpickle the project's DoFns)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH")) if p)
    return env


def process_group_alive(process_group: int) -> bool:
    """Whether any process of the group is still there (what a stop must leave false)."""
    try:
        os.killpg(process_group, 0)
        return True
    except ProcessLookupError:
        return False


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (the service and the SDK workers it started), SIGKILL if still there."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children left in the group after the leader exited


def _wait_for_port(process: subprocess.Popen, port_file: str, log_file: str, deadline: float) -> int:
    while not os.path.exists(port_file):
        if process.poll() is not None:
            with open(log_file, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"Beam service exited with status {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Beam service not ready after {READY_SECONDS:.0f} s (log: {log_file})")
        time.sleep(0.2)
    with open(port_file, encoding="utf-8") as f:
        return int(f.read())


@contextlib.contextmanager
def beam_services(roles: tuple[str, ...], log_dir: str) -> Iterator[dict[str, tuple[int, int]]]:
    """Starts each service of `roles` (keys of SERVICES) on a free loopback port, each in its own process
    group, waits until all listen, and stops them (with the SDK workers they started) on exit.
    Yields {role: (port, process group)}; logs go to `log_dir`/<role>.log."""
    with contextlib.ExitStack() as stack:
        os.makedirs(log_dir, exist_ok=True)
        env = service_environment()
        started = []
        for role in roles:
            port_file = os.path.join(log_dir, f"{role}.port")
            if os.path.exists(port_file):
                os.remove(port_file)
            log_file = os.path.join(log_dir, f"{role}.log")
            with open(log_file, "w", encoding="utf-8") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", MODULE, "serve", role, "--port-file", port_file],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            stack.callback(stop_process_group, process)
            started.append((process, port_file, log_file))
        deadline = time.monotonic() + READY_SECONDS
        ports = [_wait_for_port(*s, deadline) for s in started]
        yield {role: (port, s[0].pid) for role, port, s in zip(roles, ports, started, strict=True)}


@contextlib.contextmanager
def portable_services(log_dir: str | None = None) -> Iterator[PortableServices]:
    """Starts the job service and the worker pool on free loopback ports (`beam_services`), and stops both
    (with the SDK workers they started) on exit."""
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="beam-portable-"))
        services = stack.enter_context(beam_services(("job-service", "worker-pool"), log_dir))
        (job_port, job_group), (pool_port, pool_group) = services["job-service"], services["worker-pool"]
        yield PortableServices(job_port, pool_port, log_dir, (job_group, pool_group))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.portable_beam", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="start both services, run COMMAND with their Beam options, stop both")
    run.add_argument("--log-dir", default=None, help="where the services' logs go (default: a temp dir)")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND (e.g. pin2vec run ...)")
    serve = sub.add_parser("serve", help="one service in this process (what `run` starts)")
    serve.add_argument("role", choices=SERVICES)
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--port-file", required=True, help="written once the service listens")
    args = parser.parse_args(argv)
    if args.action == "serve":
        SERVICES[args.role](args.port, args.port_file)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error(
            "give the command to run after --, e.g. run -- pin2vec run --events ... --output-dir ..."
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services on the way out
    with portable_services(args.log_dir) as services:
        print(
            f"Beam job service on localhost:{services.job_port}, worker pool on localhost:"
            f"{services.worker_pool_port} (logs: {services.log_dir})",
            file=sys.stderr,
            flush=True,
        )
        child = subprocess.Popen(command + [f"--beam-arg={arg}" for arg in services.beam_args])
        try:
            return child.wait()
        finally:  # interrupted (Ctrl-C, SIGTERM): the command goes too, before the services it uses
            if child.poll() is None:
                child.terminate()
                child.wait()


SERVICES = {"job-service": serve_job_service, "worker-pool": serve_worker_pool}

if __name__ == "__main__":
    sys.exit(main())
