"""The real pipeline on Beam's portable path (the Fn API that Flink, Spark and Dataflow use): Beam's job
service and an external SDK worker pool on loopback, every DoFn pickled and run in a worker process. Its
outputs must be those of the DirectRunner run of the same data and settings (tests/e2e/runner_comparison.py
says which are exact and which within a tolerance).
"""

import dataclasses
import ipaddress
import threading

import psutil
import pytest

from pipeline.config import RunSettings
from pipeline.local_runner import run_local
from pipeline.portable_beam import PortableServices, portable_services, process_group_alive
from tests.e2e import runner_comparison

pytestmark = pytest.mark.e2e


class ListenerSampler(threading.Thread):
    """Records every listening TCP address of the services' process trees while the pipeline runs: the job
    service's runner opens its Fn API servers (control, data, state, logging) for each job only."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.listening, self.stopped = pids, set(), threading.Event()

    def run(self):
        while not self.stopped.wait(0.3):
            for pid in self.pids:
                try:
                    parent = psutil.Process(pid)
                    for process in [parent, *parent.children(recursive=True)]:
                        for c in process.net_connections(kind="tcp"):
                            if c.status == psutil.CONN_LISTEN:
                                self.listening.add((c.laddr.ip, c.laddr.port))
                except psutil.Error:
                    continue  # a worker that just exited


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    return address.is_loopback or bool(address.ipv4_mapped and address.ipv4_mapped.is_loopback)


@dataclasses.dataclass
class PortableRun:
    run: RunSettings
    result: dict  # run_local's
    services: PortableServices
    listening: set[tuple[str, int]]  # (address, port) of every listening socket seen while the pipeline ran
    still_running: list[int]  # the services' process groups that outlived the fixture


@pytest.fixture(scope="module")
def portable_run(direct_run, tmp_path_factory):
    settings, _, _ = direct_run  # the same input files and settings
    root = tmp_path_factory.mktemp("portable")
    with portable_services(str(root / "beam-services")) as services:
        sampler = ListenerSampler(services.process_groups)
        sampler.start()
        run = RunSettings(output_dir=str(root / "out"), beam_args=services.beam_args)
        try:
            result = run_local(settings, run)
        finally:
            sampler.stopped.set()
            sampler.join()
    still_running = [group for group in services.process_groups if process_group_alive(group)]
    return PortableRun(run, result, services, sampler.listening, still_running)


def test_services_listen_on_loopback_only_and_stop_with_their_workers(portable_run):
    services, listening = portable_run.services, portable_run.listening
    ports = {port for _, port in listening}
    assert {services.job_port, services.worker_pool_port} <= ports
    assert len(ports) > 2, f"the runner's Fn API servers were never seen: {sorted(listening)}"
    assert [(ip, port) for ip, port in listening if not _is_loopback(ip)] == []
    assert portable_run.still_running == [], "process groups outlived the fixture that stopped them"


def test_every_beam_step_ran_as_a_portable_job(portable_run):
    for step, log in runner_comparison.step_logs(portable_run.result).items():
        assert "portable_runner: Job state changed to DONE" in log, f"{step} ran elsewhere"


def test_pairs_counts_and_vocabulary_equal_the_direct_runners(portable_run, direct_run):
    run, result = portable_run.run, portable_run.result
    runner_comparison.assert_pairs_counts_and_vocabulary_equal(run, result, direct_run)


@pytest.mark.parametrize("step", runner_comparison.CANDIDATE_STEPS)
def test_candidate_tables_equal_the_direct_runners(portable_run, direct_run, step):
    runner_comparison.assert_candidate_table_equal(portable_run.run, portable_run.result, direct_run, step)


def test_evaluation_figures_equal_the_direct_runners(portable_run, direct_run):
    runner_comparison.assert_evaluation_figures_equal(portable_run.run, portable_run.result, direct_run)
