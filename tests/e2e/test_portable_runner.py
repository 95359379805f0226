"""The real pipeline on Beam's portable path (the Fn API that Flink, Spark and Dataflow use): Beam's job
service and an external SDK worker pool on loopback, every DoFn pickled and run in a worker process. Its
outputs must be those of the DirectRunner run of the same data and settings (tests/e2e/conftest.py).

Exact: the pairs of every split, Transform's vocabulary, the counters, the co-occurrence and board tables and
their evaluation figures, and the Evaluator's figures against the RelatedEvaluator's for the same model.
Within a tolerance: what depends on the trained model, since training is not bit-for-bit reproducible even on
identical pairs in identical order (the losses of two runs differ from the third decimal).
"""

import dataclasses
import glob
import ipaddress
import os
import re
import threading

import numpy as np
import psutil
import pytest

from components.session_example_gen import run_counts
from formats import candidate_table
from pipeline.config import RunSettings
from pipeline.local_runner import run_local
from pipeline.metadata import connection_config, latest_outputs
from pipeline.portable_beam import PortableServices, portable_services
from pipeline.summary import summarize_run

pytestmark = pytest.mark.e2e
BEAM_STEPS = (
    "BoardCooccurrence",
    "SessionExampleGen",
    "CooccurrenceCandidates",
    "ColdStartCandidates",
    "StatisticsGen",
    "Transform",
    "Evaluator",
)
MODEL_FREE_SOURCES = ("cooccurrence", "board")
# Training is not reproducible bit for bit, so each model differs a little, and HR@10 on 80 queries moves with
# it: pin2vec_similar's validation HR@10 was 0.425 on the DirectRunner and 0.30 on the portable path from the
# same pairs. The tolerance (16 queries) catches a broken model, not a small change.
MODEL_TOLERANCE = 0.2
RANDOM_HIT_RATE_AT_10 = 10 / 120


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


def _alive(process_group: int) -> bool:
    try:
        os.killpg(process_group, 0)
        return True
    except ProcessLookupError:
        return False


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
    still_running = [group for group in services.process_groups if _alive(group)]
    return PortableRun(run, result, services, sampler.listening, still_running)


def _outputs(run: RunSettings, result: dict):
    return latest_outputs(connection_config(run), run.pipeline_name, run_id=result["run_id"])


def _summary(run: RunSettings, result: dict):
    config = connection_config(run)
    return summarize_run(config, run.pipeline_name, run.pipeline_root, run_id=result["run_id"])


def test_services_listen_on_loopback_only_and_stop_with_their_workers(portable_run):
    services, listening = portable_run.services, portable_run.listening
    ports = {port for _, port in listening}
    assert {services.job_port, services.worker_pool_port} <= ports
    assert len(ports) > 2, f"the runner's Fn API servers were never seen: {sorted(listening)}"
    assert [(ip, port) for ip, port in listening if not _is_loopback(ip)] == []
    assert portable_run.still_running == [], "process groups outlived the fixture that stopped them"


def test_every_beam_step_ran_as_a_portable_job(portable_run):
    result = portable_run.result
    assert not any(cached for _, _, cached in result["components"])
    with open(result["log_file"], encoding="utf-8") as f:
        log = f.read()
    for step in BEAM_STEPS:
        section = re.search(f"Component {step} is running\\.(.*?)Component {step} is finished\\.", log, re.S)
        assert section, f"{step} did not run"
        assert "portable_runner: Job state changed to DONE" in section.group(1), f"{step} ran elsewhere"


def _records(examples_uri: str, split: str) -> list[bytes]:
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    return sorted(r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _vocabulary_files(transform_graph_uri: str) -> dict[str, str]:
    assets = os.path.join(transform_graph_uri, "transform_fn", "assets")
    contents = {}
    for name in sorted(os.listdir(assets)):
        with open(os.path.join(assets, name), encoding="utf-8") as f:
            contents[name] = f.read()
    return contents


def test_pairs_counts_and_vocabulary_equal_the_direct_runners(portable_run, direct_run):
    _, direct, direct_result = direct_run
    ours, theirs = _outputs(portable_run.run, portable_run.result), _outputs(direct, direct_result)
    examples = ours[("SessionExampleGen", "examples")]
    expected_examples = theirs[("SessionExampleGen", "examples")]
    for counter in run_counts.REPORTED_COUNTERS:
        assert examples.custom_properties[counter] == expected_examples.custom_properties[counter], counter
    assert examples.custom_properties["pairs_train"].int_value > 0
    for split in ("train", "eval", "test", "rerank"):
        assert _records(examples.uri, split) == _records(expected_examples.uri, split), split
    vocabulary = _vocabulary_files(ours[("Transform", "transform_graph")].uri)
    assert vocabulary and vocabulary == _vocabulary_files(theirs[("Transform", "transform_graph")].uri)


@pytest.mark.parametrize("step", ["CooccurrenceCandidates", "ColdStartCandidates", "BoardCooccurrence"])
def test_candidate_tables_equal_the_direct_runners(portable_run, direct_run, step):
    _, direct, direct_result = direct_run
    ours, theirs = _outputs(portable_run.run, portable_run.result), _outputs(direct, direct_result)
    table = candidate_table.load_table(ours[(step, "candidates")].uri)
    expected = candidate_table.load_table(theirs[(step, "candidates")].uri)
    assert table.items == expected.items and len(table.items) > 0
    np.testing.assert_array_equal(table.neighbours, expected.neighbours)
    np.testing.assert_allclose(table.scores, expected.scores, rtol=1e-6)
    np.testing.assert_array_equal(table.popularity, expected.popularity)


def test_evaluation_figures_equal_the_direct_runners(portable_run, direct_run):
    _, direct, direct_result = direct_run
    ours, theirs = _summary(portable_run.run, portable_run.result), _summary(direct, direct_result)
    assert ours.blessed and ours.pushed_version is not None
    assert ours.metrics["example_count"] == theirs.metrics["example_count"] == 80
    # The Evaluator (TFMA, on Beam) and the RelatedEvaluator (numpy, no Beam) rank the same validation queries
    # with the same model through the same scorer: on the portable path too, their figures agree exactly.
    for summary in (ours, theirs):
        pin2vec = summary.related["splits"]["validation"]["pin2vec"]["hit_rate"]
        assert summary.metrics["hit_rate_at_10"] == pytest.approx(pin2vec["10"], abs=1e-6)
        assert summary.metrics["hit_rate_at_50"] == pytest.approx(pin2vec["50"], abs=1e-6)
    for split in ("validation", "test"):
        by_source, expected = ours.related["splits"][split], theirs.related["splits"][split]
        assert set(by_source) == set(expected)
        for source, metrics in by_source.items():
            if source in MODEL_FREE_SOURCES:
                assert metrics["hit_rate"] == expected[source]["hit_rate"], (split, source)
                assert metrics["mrr"] == expected[source]["mrr"], (split, source)
            else:
                hit_rate, expected_hit_rate = metrics["hit_rate"]["10"], expected[source]["hit_rate"]["10"]
                assert hit_rate == pytest.approx(expected_hit_rate, abs=MODEL_TOLERANCE), (split, source)
                assert hit_rate > RANDOM_HIT_RATE_AT_10 * 2, (split, source)
