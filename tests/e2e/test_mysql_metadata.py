"""ML Metadata on a MySQL-compatible server, as on a Kubeflow cluster: `pin2vec run --mysql-*` against a real
MariaDB (tests/e2e/mariadb.py: Debian's packages, unpacked into a cache; skipped where apt cannot fetch them).

Pipeline A runs twice (the second run from the cache, as ML Metadata on MySQL records it); pipeline B, named
'<A>.b' so that its node contexts ('pin2vec.b.Trainer') start with A's prefix, runs once on the same inputs
and database. Each pipeline's contexts, executions and artifacts must be its own.
"""

import contextlib
import dataclasses
import io
import os
import time

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline import cli
from pipeline.config import RunSettings
from pipeline.metadata import (
    PIPELINE_CONTEXT_TYPE,
    PIPELINE_RUN_CONTEXT_TYPE,
    check_store,
    connection_config,
    latest_outputs,
    pipeline_executions,
)
from pipeline.mysql_check import MySQLUnreachableError
from pipeline.summary import summarize_run
from tests.e2e.expected import COMPONENTS
from tests.e2e.mariadb import MariaDBUnavailable, fetch_mariadb, mariadb_server
from tests.e2e.tiny_log import write_tiny_log

pytestmark = pytest.mark.e2e
DATABASE = "lineage"
PASSWORD_ENV = "PIN2VEC_TEST_MYSQL_PASSWORD"
PIPELINE_A, PIPELINE_B = "pin2vec", "pin2vec.b"


@pytest.fixture(scope="module")
def mariadb_root():
    """The unpacked packages (fetched once per machine); every test that needs them skips where apt cannot."""
    try:
        return fetch_mariadb()
    except MariaDBUnavailable as error:
        pytest.skip(f"no MariaDB server binaries here: {error}")


@pytest.fixture(scope="module")
def mariadb(mariadb_root):
    with mariadb_server(mariadb_root) as server:
        yield server


@contextlib.contextmanager
def _environment(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


@dataclasses.dataclass
class Runs:
    a: RunSettings
    b: RunSettings
    seconds: list[float]  # A's first run, A's second, B's
    printed: list[str]  # each run's summary


@pytest.fixture(scope="module")
def runs(mariadb, tmp_path_factory):
    root = tmp_path_factory.mktemp("mysql")
    log = root / "events.tsv"
    write_tiny_log(log)
    settings = mariadb.settings(DATABASE)
    flags = ["--mysql-host", settings.host, "--mysql-port", str(settings.port), "--mysql-database", DATABASE]
    flags += ["--mysql-user", settings.user, "--mysql-password-env", PASSWORD_ENV]
    tiny = ["--min-count", "3", "--epochs", "2", "--embedding-dim", "16", "--negatives", "8"]
    tiny += ["--batch-size", "64", "--min-index-recall", "0.5", "--beam-arg=--runner=DirectRunner"]
    a = RunSettings(output_dir=str(root / "a"), pipeline_name=PIPELINE_A, mysql=settings)
    b = RunSettings(output_dir=str(root / "b"), pipeline_name=PIPELINE_B, mysql=settings)
    seconds, printed = [], []
    with _environment(PASSWORD_ENV, settings.password):
        for run in (a, a, b):
            started = time.monotonic()
            argv = ["run", "--events", str(log), "--output-dir", run.output_dir]
            with contextlib.redirect_stdout(io.StringIO()) as out:
                assert cli.main([*argv, "--pipeline-name", run.pipeline_name, *flags, *tiny]) == 0
            seconds.append(time.monotonic() - started)
            printed.append(out.getvalue())
    print(f"pin2vec run with ML Metadata on MariaDB {mariadb.version}: {[round(s) for s in seconds]} s")
    return Runs(a, b, seconds, printed)


def _store(run: RunSettings) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(connection_config(run))


def _runs_of(store, pipeline_name: str) -> list[dict[str, int]]:
    """Each pipeline run of `pipeline_name`, oldest first: {node id: execution state}."""
    node_of = {e.id: (node, e.last_known_state) for node, e in pipeline_executions(store, pipeline_name)}
    found = []
    for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT_TYPE):
        executions = [node_of[e.id] for e in store.get_executions_by_context(context.id) if e.id in node_of]
        if executions:
            found.append((context.create_time_since_epoch, context.id, dict(executions)))
    return [states for *_, states in sorted(found)]


@pytest.mark.mysql  # minutes: `make test-mysql`
def test_second_run_is_answered_from_the_cache_recorded_in_mysql(runs):
    store = _store(runs.a)
    first, second = _runs_of(store, PIPELINE_A)
    assert set(first) >= COMPONENTS, sorted(first)
    assert all(first[node] == mlmd.Execution.COMPLETE for node in COMPONENTS), first
    cached = {node for node, state in second.items() if state == mlmd.Execution.CACHED}
    # As in tests/e2e/test_pipeline_local.py: the Evaluator's baseline is the first run's model, so it and
    # the pusher rerun; everything upstream comes from the cache.
    assert COMPONENTS - {"Evaluator", "RelatedPusher"} <= cached, second
    summary = summarize_run(connection_config(runs.a), PIPELINE_A, runs.a.pipeline_root)
    assert summary.blessed and summary.pushed_version is not None


@pytest.mark.mysql  # minutes: `make test-mysql`
def test_two_pipelines_sharing_the_database_keep_their_lineage_apart(runs):
    store = _store(runs.a)
    pipelines = {c.name: c for c in store.get_contexts_by_type(PIPELINE_CONTEXT_TYPE)}
    assert set(pipelines) == {PIPELINE_A, PIPELINE_B}
    executions = {
        name: {e.id for e in store.get_executions_by_context(context.id)}
        for name, context in pipelines.items()
    }
    assert executions[PIPELINE_A] and executions[PIPELINE_B]
    assert not executions[PIPELINE_A] & executions[PIPELINE_B]
    # Every execution's node context is its own pipeline's, and B's first run shares no cache with A's.
    [b_run] = _runs_of(store, PIPELINE_B)
    assert set(b_run) >= COMPONENTS and mlmd.Execution.CACHED not in b_run.values(), b_run
    assert len(_runs_of(store, PIPELINE_A)) == 2
    where = f"mysql://127.0.0.1:{runs.a.mysql.port}/{DATABASE}"
    assert f"ML Metadata:        {where} (pipeline {PIPELINE_B!r})" in runs.printed[2], runs.printed[2]
    for run in (runs.a, runs.b):
        nodes = {node for node, _ in pipeline_executions(store, run.pipeline_name)}
        assert nodes >= COMPONENTS and not any("." in node for node in nodes), sorted(nodes)
        outputs = latest_outputs(connection_config(run), run.pipeline_name)
        assert {node for node, _ in outputs} <= nodes
        for artifact in outputs.values():  # written under this pipeline's own root
            assert artifact.uri.startswith(run.pipeline_root + os.sep), (run.pipeline_name, artifact.uri)
        summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
        assert summary.blessed
        assert os.listdir(os.path.join(run.serving_dir, "embedding")) == [str(summary.pushed_version)]


def test_a_wrong_password_names_the_flags_to_fix(mariadb, tmp_path):
    wrong = dataclasses.replace(mariadb.settings(DATABASE), password="not-the-password")
    run = RunSettings(output_dir=str(tmp_path), mysql=wrong)
    with pytest.raises(MySQLUnreachableError) as raised:
        check_store(run)
    message = str(raised.value)
    assert (
        f"MySQL {mariadb.version} at 127.0.0.1:{mariadb.port} (--mysql-host/--mysql-port) answers" in message
    )
    assert f"as '{wrong.user}' (--mysql-user; password from the variable --mysql-password-env" in message
    assert f"{DATABASE!r} (--mysql-database)" in message


def test_the_server_listens_on_loopback_only_and_stops_with_its_fixture(mariadb_root, tmp_path):
    import psutil

    with mariadb_server(mariadb_root, work_dir=str(tmp_path)) as server:
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process(server.pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {("127.0.0.1", server.port)}
    assert not psutil.pid_exists(server.pid)
    assert not os.path.exists(server.datadir)
