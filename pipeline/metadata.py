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


def latest_artifacts(
    config: metadata_store_pb2.ConnectionConfig, pipeline_name: str
) -> dict[str, metadata_store_pb2.Artifact]:
    """The newest artifact of every type produced in the pipeline's context, keyed by type name.

    Cached steps of a rerun publish no new artifact, so the newest one of a type is what the latest run
    used.
    """
    store = metadata_store.MetadataStore(config)
    context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if context is None:
        return {}
    types = {t.id: t.name for t in store.get_artifact_types()}
    latest: dict[str, metadata_store_pb2.Artifact] = {}
    for artifact in store.get_artifacts_by_context(context.id):
        name = types.get(artifact.type_id, "?")
        if name not in latest or artifact.id > latest[name].id:
            latest[name] = artifact
    return latest


def custom_value(artifact: metadata_store_pb2.Artifact | None, key: str, default=None):
    """A custom property's int/double/string value, or `default`."""
    if artifact is None or key not in artifact.custom_properties:
        return default
    value = artifact.custom_properties[key]
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        return dict(value.struct_value)
    return getattr(value, kind) if kind else default
