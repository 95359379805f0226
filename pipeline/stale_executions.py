"""Executions a killed run left RUNNING in ML Metadata: marked FAILED, their half-written outputs removed.

TFX records an execution as RUNNING before its executor starts and as COMPLETE after. A run killed in between
(kill -9, a lost machine) leaves it RUNNING forever, with its output directories half written. The next run
holds the output directory's run lock, so no other process can be running them: they are stale.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.metadata import pipeline_executions

_UNFINISHED = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.PENDING_OUTPUT)
NOTE_PROPERTY = "pin2vec_stale"


@dataclasses.dataclass(frozen=True)
class StaleExecution:
    execution_id: int
    node: str  # the component's node id, e.g. "Trainer"
    removed: tuple[str, ...]  # output directories removed


def fail_stale_executions(
    config: metadata_store_pb2.ConnectionConfig, pipeline_name: str, pipeline_root: str
) -> list[StaleExecution]:
    """Marks every unfinished execution of `pipeline_name` FAILED, its unpublished output artifacts ABANDONED,
    and removes their directories (only those under `pipeline_root`). Call only while holding the run lock."""
    store = metadata_store.MetadataStore(config)
    root = os.path.abspath(pipeline_root) + os.sep
    stale = []
    for node, execution in pipeline_executions(store, pipeline_name):
        if execution.last_known_state in _UNFINISHED:
            events = store.get_events_by_execution_ids([execution.id])
            outputs = [e.artifact_id for e in events if e.type in _OUTPUT_EVENTS]
            removed = []
            artifacts = store.get_artifacts_by_id(outputs) if outputs else []
            for artifact in artifacts:
                if artifact.state == metadata_store_pb2.Artifact.LIVE:
                    continue  # published before the kill: another execution may read it
                path = os.path.abspath(artifact.uri)
                if path.startswith(root) and os.path.exists(path):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
                artifact.state = metadata_store_pb2.Artifact.ABANDONED
            if artifacts:
                store.put_artifacts(artifacts)
            execution.last_known_state = metadata_store_pb2.Execution.FAILED
            note = (
                f"left unfinished by a run that died; marked FAILED at {time.strftime('%Y-%m-%d %H:%M:%S')}"
            )
            execution.custom_properties[NOTE_PROPERTY].string_value = note
            store.put_executions([execution])
            stale.append(StaleExecution(execution.id, node, tuple(removed)))
    return stale
