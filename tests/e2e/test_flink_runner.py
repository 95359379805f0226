"""The real pipeline on a Flink session cluster: a JobManager and two TaskManagers, each its own JVM, and
Beam's FlinkRunner submitting every Beam step to it as a Flink job (pipeline/flink_cluster.py). Its outputs
must be those of the DirectRunner run of the same data and settings (tests/e2e/runner_comparison.py), and
Flink's REST API must show that every job ran on both TaskManagers.

Run with `make test-flink`: it fetches Flink with mvn once, then runs this module in a network namespace with
only loopback (Beam's Java servers bind every interface).
"""

import dataclasses
import datetime
import re
import signal

import psutil
import pytest

from pipeline.config import RunSettings
from pipeline.flink_cluster import FlinkCluster, flink_cluster
from pipeline.local_runner import run_local
from pipeline.portable_beam import process_group_alive
from tests.e2e import runner_comparison

pytestmark = [pytest.mark.e2e, pytest.mark.flink]


@dataclasses.dataclass(frozen=True)
class FlinkJob:
    name: str
    state: str
    start_ms: int
    end_ms: int
    task_managers: frozenset[str]  # the TaskManagers that ran any of its tasks
    parallelism: int  # the largest of its vertices


@dataclasses.dataclass
class FlinkRun:
    run: RunSettings
    result: dict  # run_local's
    cluster: FlinkCluster
    task_managers: set[str]  # registered with the JobManager
    jobs: list[FlinkJob]
    still_running: list[int]  # the cluster's process groups that outlived it
    java_children: list[list[str]]  # the JVMs this process still had after the cluster stopped
    job_servers_stopped: bool  # whether those stopped on SIGINT, as Beam stops them when this process exits


def _jobs(cluster: FlinkCluster) -> list[FlinkJob]:
    jobs = []
    for overview in cluster.rest("/jobs/overview")["jobs"]:
        jid = overview["jid"]
        vertices = cluster.rest(f"/jobs/{jid}")["vertices"]
        task_managers = {
            placement["taskmanager-id"]
            for vertex in vertices
            for placement in cluster.rest(f"/jobs/{jid}/vertices/{vertex['id']}/taskmanagers")["taskmanagers"]
        }
        parallelism = max(vertex["parallelism"] for vertex in vertices)
        jobs.append(
            FlinkJob(
                overview["name"],
                overview["state"],
                overview["start-time"],
                overview["end-time"],
                frozenset(task_managers),
                parallelism,
            )
        )
    return jobs


def _step_windows(log_file: str) -> dict[str, tuple[float, float]]:
    """{step: (when it started, when it finished)} in seconds since the epoch, from the run's log."""
    with open(log_file, encoding="utf-8") as f:
        log = f.read()
    windows = {}
    for step in runner_comparison.BEAM_STEPS:
        times = []
        for event in ("running", "finished"):
            line = re.search(f"^(\\S+ \\S+) INFO absl: Component {step} is {event}\\.", log, re.M)
            assert line, f"{step} is never {event} in {log_file}"
            times.append(datetime.datetime.strptime(line.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
        windows[step] = (times[0], times[1])
    return windows


@pytest.fixture(scope="module")
def flink_run(direct_run, tmp_path_factory):
    settings, _, _ = direct_run  # the same input files and settings
    root = tmp_path_factory.mktemp("flink")
    with flink_cluster(log_dir=str(root / "cluster")) as cluster:
        run = RunSettings(output_dir=str(root / "out"), beam_args=cluster.beam_args)
        result = run_local(settings, run)
        task_managers = {tm["id"] for tm in cluster.rest("/taskmanagers")["taskmanagers"]}
        jobs = _jobs(cluster)
    still_running = [group for group in cluster.process_groups if process_group_alive(group)]
    # Beam keeps each step's job server until the process that ran the pipeline exits (its atexit handler
    # sends SIGINT): here, one JVM per Beam pipeline, which this fixture stops the same way.
    java = [child for child in psutil.Process().children(recursive=True) if child.name() == "java"]
    java_children = [child.cmdline() for child in java]
    for child in java:
        child.send_signal(signal.SIGINT)
    _, alive = psutil.wait_procs(java, timeout=30)
    for child in alive:
        child.kill()
    return FlinkRun(
        run, result, cluster, task_managers, jobs, still_running, java_children, job_servers_stopped=not alive
    )


def test_every_beam_step_ran_as_flink_jobs_on_both_task_managers(flink_run):
    for step, log in runner_comparison.step_logs(flink_run.result).items():
        assert "FlinkJarJobServer" in log, f"{step} did not start Beam's Flink job server"
        assert "Job state changed to DONE" in log, f"{step} did not finish a job"
    assert len(flink_run.task_managers) == 2
    for job in flink_run.jobs:
        assert job.state == "FINISHED", job
        assert job.parallelism == 2, job
        assert job.task_managers == flink_run.task_managers, f"{job.name} ran on {sorted(job.task_managers)}"
    for step, (start, end) in _step_windows(flink_run.result["log_file"]).items():
        inside = [job for job in flink_run.jobs if start * 1000 <= job.start_ms <= job.end_ms <= end * 1000]
        assert inside, f"no Flink job ran while {step} ran"


def test_the_cluster_stops_with_its_fixture_and_only_beams_job_servers_remain(flink_run):
    assert flink_run.still_running == [], "Flink processes outlived the fixture that stopped them"
    job_server = ["java", "-jar", flink_run.cluster.job_server_jar]
    assert flink_run.java_children, "no job server was started"
    assert [command[:3] for command in flink_run.java_children if command[:3] != job_server] == []
    assert flink_run.job_servers_stopped, "Beam's job servers did not stop on SIGINT"


def test_pairs_counts_and_vocabulary_equal_the_direct_runners(flink_run, direct_run):
    runner_comparison.assert_pairs_counts_and_vocabulary_equal(flink_run.run, flink_run.result, direct_run)


@pytest.mark.parametrize("step", runner_comparison.CANDIDATE_STEPS)
def test_candidate_tables_equal_the_direct_runners(flink_run, direct_run, step):
    runner_comparison.assert_candidate_table_equal(flink_run.run, flink_run.result, direct_run, step)


def test_evaluation_figures_equal_the_direct_runners(flink_run, direct_run):
    runner_comparison.assert_evaluation_figures_equal(flink_run.run, flink_run.result, direct_run)
