"""`pin2vec gc`: reads ML Metadata and the serving directory, plans with gc_plan, deletes (or lists, dry run).

Deleting a pipeline artifact removes its directory and marks it DELETED in ML Metadata, so TFX's cache never
offers it again. Deleting a serving version removes its commit record first (readers stop seeing it in that
one step), then its model directories. Holds the output directory's run lock, so no run writes meanwhile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from formats import push_records, serving_layout
from pipeline.gc_plan import ArtifactRecord, RunRecord, artifacts_to_delete, check_keep, versions_to_delete
from pipeline.metadata import PIPELINE_RUN_CONTEXT_TYPE, pipeline_executions

_EVENTS = (
    metadata_store_pb2.Event.INPUT,
    metadata_store_pb2.Event.OUTPUT,
    metadata_store_pb2.Event.DECLARED_INPUT,
    metadata_store_pb2.Event.DECLARED_OUTPUT,
    metadata_store_pb2.Event.INTERNAL_INPUT,
    metadata_store_pb2.Event.INTERNAL_OUTPUT,
    metadata_store_pb2.Event.PENDING_OUTPUT,
)


@dataclasses.dataclass
class GcResult:
    artifacts: list[ArtifactRecord]  # deleted (or, dry run, to delete)
    versions: list[int]
    kept_runs: list[str]
    bytes: int  # on disk, of what was (would be) deleted
    dry_run: bool


def _size(path: str) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def read_records(
    store: metadata_store.MetadataStore, pipeline_name: str
) -> tuple[list[RunRecord], dict[int, ArtifactRecord]]:
    """The pipeline's runs (with the artifacts each read or wrote) and every artifact its nodes wrote."""
    node_of = {execution.id: node for node, execution in pipeline_executions(store, pipeline_name)}
    events = store.get_events_by_execution_ids(list(node_of)) if node_of else []
    touched: dict[int, set[int]] = {}
    written: dict[int, str] = {}
    for event in events:
        if event.type in _EVENTS:
            touched.setdefault(event.execution_id, set()).add(event.artifact_id)
        if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.PENDING_OUTPUT):
            written.setdefault(event.artifact_id, node_of[event.execution_id])
    runs = []
    for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT_TYPE):
        executions = [e.id for e in store.get_executions_by_context(context.id) if e.id in node_of]
        if executions:
            ids = frozenset().union(*(touched.get(e, set()) for e in executions))
            runs.append(RunRecord(context.name, context.create_time_since_epoch, ids))
    artifacts = {
        a.id: ArtifactRecord(a.id, a.uri, written[a.id], a.state == metadata_store_pb2.Artifact.DELETED)
        for a in (store.get_artifacts_by_id(list(written)) if written else [])
    }
    return runs, artifacts


def collect_garbage(
    config: metadata_store_pb2.ConnectionConfig,
    pipeline_name: str,
    pipeline_root: str,
    serving_dir: str,
    keep: int,
    dry_run: bool = False,
) -> GcResult:
    """Plans and (unless `dry_run`) deletes; call while holding the output directory's run lock."""
    check_keep(keep)
    store = metadata_store.MetadataStore(config)
    runs, artifacts = read_records(store, pipeline_name)
    doomed = artifacts_to_delete(runs, artifacts, keep, pipeline_root)
    versions: list[int] = []
    if os.path.isdir(serving_dir):
        if not dry_run:
            serving_layout.adopt_legacy_versions(serving_dir)
        committed = sorted(push_records.committed(serving_dir))
        versions = versions_to_delete(committed, push_records.pinned_version(serving_dir), keep)
    version_dirs = [
        os.path.join(serving_dir, model, str(v))
        for v in versions
        for model in serving_layout.MODELS
        if os.path.isdir(os.path.join(serving_dir, model, str(v)))
    ]
    size = sum(_size(a.uri) for a in doomed if os.path.exists(a.uri)) + sum(map(_size, version_dirs))
    kept = sorted(runs, key=lambda r: (r.created_ms, r.name), reverse=True)[:keep]
    result = GcResult(doomed, versions, [r.name for r in kept], size, dry_run)
    if dry_run:
        return result
    for version in versions:  # invisible first, in one step; then the files
        record = os.path.join(push_records.commits_dir(serving_dir), f"{version}.json")
        if os.path.exists(record):
            os.remove(record)
    for directory in version_dirs:
        shutil.rmtree(directory, ignore_errors=True)
    if doomed:
        stored = store.get_artifacts_by_id([a.id for a in doomed])
        for artifact in stored:
            if os.path.exists(artifact.uri):
                shutil.rmtree(artifact.uri) if os.path.isdir(artifact.uri) else os.remove(artifact.uri)
            artifact.state = metadata_store_pb2.Artifact.DELETED
        store.put_artifacts(stored)
    return result


def describe(result: GcResult, output_dir: str) -> str:
    """For people: what went (or would go), what stayed, and why."""
    verb = "would delete" if result.dry_run else "deleted"
    lines = [
        f"pin2vec gc {output_dir}: {verb} {len(result.artifacts)} pipeline artifact(s) and "
        f"{len(result.versions)} serving version(s), {result.bytes / 1024**2:.1f} MB",
        f"  kept: the artifacts of the newest {len(result.kept_runs)} run(s) "
        f"({', '.join(result.kept_runs)}), "
        "cached outputs and the blessed baseline included; the served and pinned versions",
    ]
    lines += [f"  {verb}: {a.node} artifact {a.id}: {a.uri}" for a in result.artifacts]
    lines += [f"  {verb}: serving version {v}" for v in result.versions]
    return "\n".join(lines)
