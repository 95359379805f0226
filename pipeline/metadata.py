"""ML Metadata connections and the queries the CLI answers from (latest artifacts of a pipeline)."""

from __future__ import annotations

import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from pipeline.config import RunSettings


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


PIPELINE_RUN_CONTEXT_TYPE = "pipeline_run"  # TFX names each run's context by its pipeline run id


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
    node_of_execution: dict[int, str] = {}
    prefix = f"{pipeline_name}."
    for context in store.get_contexts_by_type("node"):
        if context.name.startswith(prefix):
            for execution in store.get_executions_by_context(context.id):
                if in_run is None or execution.id in in_run:
                    node_of_execution[execution.id] = context.name[len(prefix) :]
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
