"""A Flink session cluster on this machine, and Beam's Flink runner that submits every Beam step to it.

A JobManager and two TaskManagers run as separate JVMs, as on a real cluster; each Beam step of `pin2vec run`
becomes a Flink job whose tasks run on both TaskManagers, and each TaskManager starts its own Python SDK
workers (Beam's PROCESS environment, pipeline/flink_worker.py). tests/e2e/test_flink_runner.py checks that
the outputs are those of the DirectRunner.

What Maven Central serves here decides the versions (see docs/DISTRIBUTED.md): Beam's shaded Flink job-server
jar is not served, so the job server's classpath is resolved from the unshaded `beam-runners-flink-1.19`
(2.70.0, the newest served) with `beam-runners-java-job-service` 2.65.0 (the newest served); the cluster is
`flink-runtime`, `flink-streaming-java`, `flink-clients` and `flink-runtime-web` 1.19.0 (the Flink that runner
was built against) started with `java` directly, as Flink's own scripts do. A launcher jar whose manifest
names that classpath stands in for the job-server jar (`--flink_job_server_jar`).

Loopback only: Beam's Java servers (the job server's, and the Fn API servers each TaskManager opens for its
SDK workers) bind every interface and have no flag for it. So the cluster refuses to start unless this
process is in a network namespace whose only interface is loopback; `isolated` makes one
(`unshare --net`), and `run` enters one by itself.

    python -m pipeline.flink_cluster fetch
    python -m pipeline.flink_cluster run -- pin2vec run --events ... --output-dir ...
`fetch` downloads (with `mvn`, cached under ~/.cache/pin2vec/flink, once); `run` starts the cluster, runs the
command with the Beam options that use it appended, and stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator

from pipeline.loopback_ports import free_loopback_ports
from pipeline.portable_beam import service_environment, stop_process_group

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "pin2vec", "flink")
FLINK_VERSION = "1.19.0"
BEAM_FLINK_RUNNER = "beam-runners-flink-1.19"
BEAM_RUNNER_VERSION = "2.70.0"  # the newest beam-runners-flink-1.19 served; the Python SDK is 2.74.0
BEAM_JOB_SERVICE_VERSION = "2.65.0"  # the newest beam-runners-java-job-service served
LOG4J_VERSION = "2.24.3"
JOB_SERVER_MAIN = "org.apache.beam.runners.flink.FlinkJobServerDriver"
JOB_MANAGER_MAIN = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
TASK_MANAGER_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
READY_SECONDS = 180.0
ENVIRONMENT_CACHE_MILLIS = 60_000  # how long a TaskManager keeps idle SDK workers of a job
# What Flink's own config.yaml passes every JVM (env.java.opts.all) so that it runs on Java 17.
JAVA_17_OPTIONS = tuple(
    [
        "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
        "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    ]
    + [
        f"--add-opens=java.base/{package}=ALL-UNNAMED"
        for package in (
            "java.lang",
            "java.net",
            "java.io",
            "java.nio",
            "sun.nio.ch",
            "java.lang.reflect",
            "java.text",
            "java.time",
            "java.util",
            "java.util.concurrent",
            "java.util.concurrent.atomic",
            "java.util.concurrent.locks",
        )
    ]
)
LOG4J_PROPERTIES = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


def _dependency(group: str, artifact: str, version: str, exclusions: tuple[tuple[str, str], ...] = ()) -> str:
    excluded = "".join(
        f"<exclusion><groupId>{g}</groupId><artifactId>{a}</artifactId></exclusion>" for g, a in exclusions
    )
    return (
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
        + (f"<exclusions>{excluded}</exclusions>" if excluded else "")
        + "</dependency>"
    )


def _pom(name: str, dependencies: list[str]) -> str:
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>pin2vec</groupId><artifactId>{name}</artifactId><version>1</version>"
        "<packaging>pom</packaging><dependencies>\n"
        + "\n".join(dependencies)
        + "\n</dependencies></project>\n"
    )


POMS = {
    # Flink's own jars, what a Flink distribution's lib/ holds for a session cluster (and its web UI).
    "cluster": _pom(
        "flink-cluster",
        [
            _dependency("org.apache.flink", artifact, FLINK_VERSION)
            for artifact in ("flink-clients", "flink-streaming-java", "flink-runtime-web")
        ]
        + [_dependency("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION)],  # Flink uses slf4j 1
    ),
    # Beam's Flink job server, unshaded: the runner and the job service it needs, at the versions served.
    "job-server": _pom(
        "flink-job-server",
        [
            _dependency(
                "org.apache.beam",
                BEAM_FLINK_RUNNER,
                BEAM_RUNNER_VERSION,
                (("org.apache.beam", "beam-runners-java-job-service"),),
            ),
            _dependency(
                "org.apache.beam", "beam-runners-java-job-service", BEAM_JOB_SERVICE_VERSION, (("*", "*"),)
            ),
            # The job server also starts Beam's Java expansion service (cross-language transforms).
            _dependency("org.apache.beam", "beam-sdks-java-expansion-service", BEAM_RUNNER_VERSION),
            _dependency("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),  # Beam uses slf4j 2
        ],
    ),
}


@dataclasses.dataclass(frozen=True)
class FlinkDownloads:
    cache_dir: str

    def lib(self, name: str) -> str:
        return os.path.join(self.cache_dir, name, "lib")

    @property
    def job_server_jar(self) -> str:
        """A jar with no classes: its manifest's Main-Class and Class-Path make it Beam's job server."""
        return os.path.join(self.cache_dir, "job-server", "flink-job-server.jar")

    def complete(self) -> bool:
        return all(_marker_matches(self.cache_dir, name) for name in POMS) and os.path.exists(
            self.job_server_jar
        )


def _marker(cache_dir: str, name: str) -> str:
    return os.path.join(cache_dir, name, "complete")


def _pom_digest(name: str) -> str:
    return hashlib.sha256(POMS[name].encode()).hexdigest()


def _marker_matches(cache_dir: str, name: str) -> bool:
    try:
        with open(_marker(cache_dir, name), encoding="utf-8") as f:
            return f.read().strip() == _pom_digest(name)
    except FileNotFoundError:
        return False


def _manifest(main_class: str, class_path: list[str]) -> bytes:
    """A jar manifest: lines of at most 72 bytes, continued on lines that start with a space."""
    lines = []
    for key, value in (
        ("Manifest-Version", "1.0"),
        ("Main-Class", main_class),
        ("Class-Path", " ".join(class_path)),
    ):
        text = f"{key}: {value}".encode()
        lines.append(text[:72])
        lines.extend(b" " + text[i : i + 71] for i in range(72, len(text), 71))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _write_launcher_jar(path: str, main_class: str, lib: str) -> None:
    jars = sorted(name for name in os.listdir(lib) if name.endswith(".jar"))
    with zipfile.ZipFile(path + ".tmp", "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", _manifest(main_class, [f"lib/{name}" for name in jars]))
    os.replace(path + ".tmp", path)


def fetch(cache_dir: str = DEFAULT_CACHE_DIR) -> FlinkDownloads:
    """Downloads Flink's and Beam's jars with `mvn` into `cache_dir` (once for these versions)."""
    downloads = FlinkDownloads(cache_dir)
    for name, pom in POMS.items():
        if _marker_matches(cache_dir, name):
            continue
        if shutil.which("mvn") is None:
            raise RuntimeError(
                "`mvn` is not on PATH: it fetches Flink and Beam's Flink runner from Maven Central"
            )
        folder = os.path.join(cache_dir, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        with open(os.path.join(folder, "pom.xml"), "w", encoding="utf-8") as f:
            f.write(pom)
        command = ["mvn", "-B", "-q", "dependency:copy-dependencies", "-DoutputDirectory=lib"]
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} in {folder} failed ({done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-3000:]}"
            )
        if name == "job-server":
            _write_launcher_jar(downloads.job_server_jar, JOB_SERVER_MAIN, downloads.lib(name))
        with open(_marker(cache_dir, name), "w", encoding="utf-8") as f:
            f.write(_pom_digest(name))
    return downloads


def network_interfaces() -> list[str]:
    """This process's network namespace's interfaces (not /sys/class/net: that shows the namespace sysfs was
    mounted in)."""
    return sorted(name for _, name in socket.if_nameindex())


def require_isolated_network() -> None:
    """Beam's Java servers bind every interface: only a namespace with just loopback keeps them local."""
    interfaces = network_interfaces()
    if interfaces != ["lo"]:
        raise RuntimeError(
            f"The Flink cluster and Beam's job server bind every interface, and this network namespace has "
            f"{interfaces}: run in a namespace with only loopback, e.g. "
            f"`python -m {__spec__.name} isolated -- COMMAND` (unshare --net)."
        )


def isolated_command(command: list[str]) -> list[str]:
    """`command` in a new network namespace with only loopback, up (as root; otherwise as root of a new user
    namespace, where unprivileged user namespaces are allowed)."""
    unshare = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    return [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "isolated", *command]


@dataclasses.dataclass(frozen=True)
class FlinkCluster:
    rest_port: int
    job_server_jar: str
    sdk_worker_command: (
        str  # what each TaskManager runs to start a Python SDK worker (pipeline/flink_worker.py)
    )
    parallelism: int
    log_dir: str
    process_groups: tuple[int, ...]  # the JobManager, then each TaskManager (with the SDK workers it started)

    @property
    def beam_args(self) -> tuple[str, ...]:
        """The Beam options that run a pipeline on this cluster (what `--beam-arg` takes)."""
        return (
            "--runner=FlinkRunner",
            f"--flink_master=localhost:{self.rest_port}",
            f"--flink_job_server_jar={self.job_server_jar}",
            f"--parallelism={self.parallelism}",
            "--environment_type=PROCESS",
            "--environment_config=" + json.dumps({"command": self.sdk_worker_command}),
            # Flink runs each of a step's stages as its own task: without this, each task would start its
            # own SDK workers (seconds each, tens of seconds on a loaded machine) instead of reusing them.
            f"--environment_cache_millis={ENVIRONMENT_CACHE_MILLIS}",
        )

    def rest(self, path: str):
        """GET `path` from the JobManager's REST API (e.g. /jobs/overview), parsed."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}{path}", timeout=30) as response:
            return json.load(response)


def _config(rest_port: int, rpc_port: int, blob_port: int, tmp_dir: str) -> str:
    settings = {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": rpc_port,
        "jobmanager.bind-host": "127.0.0.1",
        "jobmanager.memory.process.size": "1024m",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": rest_port,
        "blob.server.port": blob_port,
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.host": "127.0.0.1",
        "taskmanager.memory.process.size": "2048m",
        # Beam's batch translation writes many blocking data sets at once, and each of Flink's sort-shuffle
        # partitions takes 512 network buffers (16 MiB) by default: SessionExampleGen ran out of the default
        # 128 MiB, StatisticsGen of 384 MiB ("Insufficient number of network buffers: required 512").
        "taskmanager.network.sort-shuffle.min-buffers": 64,
        "taskmanager.memory.network.min": "384m",
        "taskmanager.memory.network.max": "384m",
        "taskmanager.memory.managed.size": "256m",
        "taskmanager.numberOfTaskSlots": 1,  # so a job of parallelism 2 needs both TaskManagers
        "io.tmp.dirs": tmp_dir,
        "blob.storage.directory": tmp_dir,
        "web.tmpdir": tmp_dir,
        # Beam's runner and its libraries from the TaskManagers' own classpath (task_manager_classpath), not
        # from each job's jars: a job's classes are reloaded for every task, which would drop the SDK workers
        # that a TaskManager keeps for the next task of the same step (--environment_cache_millis).
        "classloader.resolve-order": "parent-first",
    }
    return "".join(f"{key}: {value}\n" for key, value in settings.items())


def task_manager_classpath(downloads: FlinkDownloads) -> str:
    """Flink's jars, then the job server's less its Flink and logging jars (Flink's own are first)."""
    cluster, job_server = downloads.lib("cluster"), downloads.lib("job-server")
    beam = sorted(
        os.path.join(job_server, name)
        for name in os.listdir(job_server)
        if name.endswith(".jar") and not name.startswith(("flink-", "slf4j-", "log4j-"))
    )
    return os.pathsep.join([os.path.join(cluster, "*"), *beam])


def _resource_options(classpath: str, conf_dir: str, role: str) -> tuple[list[str], list[str]]:
    """(JVM options, `-D key=value` arguments) for a JobManager or TaskManager from the memory settings, as
    Flink's start scripts compute them (BashJavaUtils)."""
    command = ["java", "-cp", classpath, "org.apache.flink.runtime.util.bash.BashJavaUtils"]
    command += [f"GET_{role}_RESOURCE_PARAMS", "--configDir", conf_dir]
    done = subprocess.run(command, capture_output=True, text=True)
    prefix = "BASH_JAVA_UTILS_EXEC_RESULT:"
    results = [line[len(prefix) :] for line in done.stdout.splitlines() if line.startswith(prefix)]
    if done.returncode != 0 or len(results) != 2:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr}"
        )
    return results[0].split(), results[1].split()


def _start_java(main_class: str, classpath: str, options: list[str], args: list[str], log: str, conf: str):
    jvm = ["java", *options, *JAVA_17_OPTIONS, f"-Dlog.file={log}.log"]
    jvm.append(f"-Dlog4j.configurationFile=file:{os.path.join(conf, 'log4j.properties')}")
    with open(f"{log}.out", "w", encoding="utf-8") as out:
        return subprocess.Popen(
            [*jvm, "-cp", classpath, main_class, *args],
            env=service_environment(),  # the SDK workers a TaskManager starts import this project
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _write_sdk_worker_command(path: str) -> str:
    """An executable that runs pipeline/flink_worker.py with this interpreter (Beam's PROCESS environment
    takes a command, without arguments of its own)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m pipeline.flink_worker "$@"\n')
    os.chmod(path, 0o755)
    return path


def _tail(path: str) -> str:
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as f:
        return f.read()[-3000:]
    return ""


def _wait_for_task_managers(
    cluster: FlinkCluster, processes: dict[str, subprocess.Popen], count: int
) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        for name, process in processes.items():
            if process.poll() is not None:
                log = os.path.join(cluster.log_dir, name)
                raise RuntimeError(
                    f"Flink {name} exited with status {process.returncode}:\n"
                    f"{_tail(log + '.out')}{_tail(log + '.log')}"
                )
        with contextlib.suppress(OSError, ValueError):
            if len(cluster.rest("/taskmanagers")["taskmanagers"]) >= count:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{count} TaskManagers not registered after {READY_SECONDS:.0f} s (logs: {cluster.log_dir})"
            )
        time.sleep(0.5)


@contextlib.contextmanager
def flink_cluster(
    cache_dir: str = DEFAULT_CACHE_DIR, log_dir: str | None = None, task_managers: int = 2
) -> Iterator[FlinkCluster]:
    """Starts a JobManager and `task_managers` TaskManagers (one slot each) on loopback, waits until every
    TaskManager has registered, and stops them all (with the SDK workers they started) on exit."""
    require_isolated_network()
    downloads = FlinkDownloads(cache_dir)
    if not downloads.complete():
        raise RuntimeError(
            f"Flink is not fetched into {cache_dir}: run `python -m {__spec__.name} fetch` first"
        )
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="flink-cluster-"))
        conf, tmp = os.path.join(log_dir, "conf"), os.path.join(log_dir, "tmp")
        os.makedirs(conf, exist_ok=True)
        os.makedirs(tmp, exist_ok=True)
        rest_port, rpc_port, blob_port = free_loopback_ports(3)
        with open(os.path.join(conf, "config.yaml"), "w", encoding="utf-8") as f:
            f.write(_config(rest_port, rpc_port, blob_port, tmp))
        with open(os.path.join(conf, "log4j.properties"), "w", encoding="utf-8") as f:
            f.write(LOG4J_PROPERTIES)
        classpath = os.path.join(downloads.lib("cluster"), "*")
        processes: dict[str, subprocess.Popen] = {}
        for role, main_class, names, role_classpath in (
            ("JM", JOB_MANAGER_MAIN, ["jobmanager"], classpath),
            (
                "TM",
                TASK_MANAGER_MAIN,
                [f"taskmanager-{i + 1}" for i in range(task_managers)],
                task_manager_classpath(downloads),
            ),
        ):
            jvm_options, dynamic = _resource_options(classpath, conf, role)
            for name in names:
                log = os.path.join(log_dir, name)
                process = _start_java(
                    main_class, role_classpath, jvm_options, ["--configDir", conf, *dynamic], log, conf
                )
                stack.callback(stop_process_group, process)
                processes[name] = process
        cluster = FlinkCluster(
            rest_port=rest_port,
            job_server_jar=downloads.job_server_jar,
            sdk_worker_command=_write_sdk_worker_command(os.path.join(log_dir, "sdk-worker")),
            parallelism=task_managers,
            log_dir=log_dir,
            process_groups=tuple(p.pid for p in processes.values()),
        )
        _wait_for_task_managers(cluster, processes, task_managers)
        yield cluster


def _call_forwarding_signals(command: list[str]) -> int:
    """Runs `command`, passing SIGTERM and SIGINT on to it (so that it stops what it started) and waiting."""
    child = subprocess.Popen(command)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _: child.send_signal(number))
    return child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="where downloads are kept")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("fetch", help="download Flink and Beam's Flink job server with mvn (once)")
    run = sub.add_parser("run", help="start the cluster, run COMMAND with its Beam options, stop the cluster")
    run.add_argument("--log-dir", default=None, help="where the cluster's logs go (default: a temp dir)")
    run.add_argument("--task-managers", type=int, default=2)
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND (e.g. pin2vec run ...)")
    isolated = sub.add_parser("isolated", help="run COMMAND in a new network namespace with only loopback")
    isolated.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.action == "fetch":
        downloads = fetch(args.cache_dir)
        print(f"Flink {FLINK_VERSION}, Beam's Flink job server {BEAM_RUNNER_VERSION}: {downloads.cache_dir}")
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error(f"give the command to run after --, e.g. {args.action} -- pin2vec run --events ...")
    if args.action == "isolated":
        return _call_forwarding_signals(isolated_command(command))
    if network_interfaces() != ["lo"]:  # `run` isolates itself, with the command it runs
        return _call_forwarding_signals(isolated_command([sys.executable, "-m", __spec__.name, *argv]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the cluster on the way out
    with flink_cluster(args.cache_dir, args.log_dir, args.task_managers) as cluster:
        print(
            f"Flink REST API on localhost:{cluster.rest_port}, {args.task_managers} TaskManagers "
            f"(logs: {cluster.log_dir})",
            file=sys.stderr,
            flush=True,
        )
        # Its own process group: Beam's job servers, started by the command, stop with it.
        child = subprocess.Popen(
            command + [f"--beam-arg={arg}" for arg in cluster.beam_args], start_new_session=True
        )
        try:
            return child.wait()
        finally:
            stop_process_group(child)


if __name__ == "__main__":
    sys.exit(main())
