"""ML Metadata connections and the queries the CLI answers from (latest artifacts of a pipeline)."""

from __future__ import annotations

import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from pipeline.config import RunSettings
from pipeline.mysql_check import MySQLUnreachableError, connect_failure_message, server_version


def connection_config(run: RunSettings) -> metadata_store_pb2.ConnectionConfig:
    """SQLite under the output directory by default; MySQL when settings name one."""
    if run.mysql:
        return metadata.mysql_metadata_connection_config(
            host=run.mysql.host,
            port=run.mysql.port,
            database=run.mysql.database,
            username=run.mysql.user,
            password=run.mysql.password,
        )
    os.makedirs(os.path.dirname(os.path.abspath(run.sqlite_path)), exist_ok=True)
    return metadata.sqlite_metadata_connection_config(run.sqlite_path)


def check_store(run: RunSettings) -> None:
    """Opens the run's store once, so that a MySQL store that cannot be used is reported before any step
    runs, naming the flags to fix (ML Metadata's own error says only `mysql_real_connect failed`)."""
    if not run.mysql:
        return
    version = server_version(run.mysql)
    try:
        metadata_store.MetadataStore(connection_config(run))
    except RuntimeError as error:
        if "mysql_real_connect" not in str(error):
            raise
        raise MySQLUnreachableError(connect_failure_message(run.mysql, version, error)) from None


PIPELINE_RUN_CONTEXT_TYPE = "pipeline_run"  # TFX names each run's context by its pipeline run id
PIPELINE_CONTEXT_TYPE = "pipeline"  # named by the pipeline's name; every execution of the pipeline is in it
NODE_CONTEXT_TYPE = "node"  # named '<pipeline name>.<node id>'


def pipeline_executions(
    store: metadata_store.MetadataStore, pipeline_name: str
) -> list[tuple[str, metadata_store_pb2.Execution]]:
    """(node id, execution) of every execution of `pipeline_name`'s nodes, and of no other pipeline's.

    Several pipelines may share a store (one MySQL database on a cluster). Node context names alone do not
    tell them apart: 'pin2vec.b.Trainer' starts with 'pin2vec.', so only executions in the pipeline's own
    context count."""
    pipeline_context = store.get_context_by_type_and_name(PIPELINE_CONTEXT_TYPE, pipeline_name)
    if pipeline_context is None:
        return []
    own = {execution.id for execution in store.get_executions_by_context(pipeline_context.id)}
    prefix = f"{pipeline_name}."
    found = []
    for context in store.get_contexts_by_type(NODE_CONTEXT_TYPE):
        if context.name.startswith(prefix):
            node = context.name[len(prefix) :]
            found += [(node, e) for e in store.get_executions_by_context(context.id) if e.id in own]
    return found


def latest_outputs(
    config: metadata_store_pb2.ConnectionConfig, pipeline_name: str, run_id: str | None = None
) -> dict[tuple[str, str], metadata_store_pb2.Artifact]:
    """The newest artifact each (node id, output key) of the pipeline produced or reused from cache.

    With `run_id`, only that pipeline run's executions count: newest over all runs may be another run's (one
    that ran at the same time on the same store, or a later one), and a node this run did not reach would
    report an older run's output as this run's.

    Keyed by producer, not by type: Transform also writes `Examples`, so "the newest Examples" would not
    say whose they are.
    """
    store = metadata_store.MetadataStore(config)
    in_run: set[int] | None = None
    if run_id is not None:
        run_context = store.get_context_by_type_and_name(PIPELINE_RUN_CONTEXT_TYPE, run_id)
        if run_context is None:
            return {}
        in_run = {execution.id for execution in store.get_executions_by_context(run_context.id)}
    node_of_execution = {
        execution.id: node
        for node, execution in pipeline_executions(store, pipeline_name)
        if in_run is None or execution.id in in_run
    }
    if not node_of_execution:
        return {}
    newest: dict[tuple[str, str], int] = {}
    for event in store.get_events_by_execution_ids(list(node_of_execution)):
        if event.type != metadata_store_pb2.Event.OUTPUT or not event.path.steps:
            continue
        key = (node_of_execution[event.execution_id], event.path.steps[0].key)
        newest[key] = max(newest.get(key, 0), event.artifact_id)
    by_id = {a.id: a for a in store.get_artifacts_by_id(list(set(newest.values())))}
    return {key: by_id[artifact_id] for key, artifact_id in newest.items()}


def custom_value(artifact: metadata_store_pb2.Artifact | None, key: str, default=None):
    """A custom property's int/double/string value, or `default`."""
    if artifact is None or key not in artifact.custom_properties:
        return default
    value = artifact.custom_properties[key]
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else default
