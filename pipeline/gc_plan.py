"""What `pin2vec gc` may delete: pure functions over plain records, so the rules are tested without a store.

Pipeline artifacts: every artifact an execution of the newest `keep` pipeline runs read or wrote stays. That
includes the outputs a cached execution of those runs reused (TFX records a cache hit as an execution whose
outputs are the earlier artifacts) and the blessed baseline the Evaluator compared against, so the next rerun
still finds its cache and its baseline. Every other artifact of the pipeline, whose directory lies under the
pipeline root, goes.

Serving versions: the newest `keep` committed versions stay, and the pinned one (a rollback) whatever its age;
the served version is the pinned one or the newest, so it always stays.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class RunRecord:
    name: str  # the pipeline run id
    created_ms: int  # ML Metadata's create time of the run's context: newest runs have the largest
    artifact_ids: frozenset[int]  # read or written by the run's executions


@dataclasses.dataclass(frozen=True)
class ArtifactRecord:
    id: int
    uri: str
    node: str  # the node that wrote it, for people
    deleted: bool = False  # already marked DELETED in ML Metadata


def check_keep(keep: int) -> None:
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(
            f"--keep must be an integer >= 1 (the newest runs and versions to keep); got {keep!r}"
        )


def kept_runs(runs: list[RunRecord], keep: int) -> list[RunRecord]:
    check_keep(keep)
    return sorted(runs, key=lambda r: (r.created_ms, r.name), reverse=True)[:keep]


def artifacts_to_delete(
    runs: list[RunRecord], artifacts: dict[int, ArtifactRecord], keep: int, pipeline_root: str
) -> list[ArtifactRecord]:
    """The pipeline's artifacts no kept run touches, not yet deleted, with their directory under
    `pipeline_root` (a path elsewhere, e.g. an imported schema or the input logs, is never removed)."""
    needed = set().union(*(run.artifact_ids for run in kept_runs(runs, keep)))
    root = os.path.abspath(pipeline_root) + os.sep
    return sorted(
        (
            artifact
            for artifact in artifacts.values()
            if artifact.id not in needed
            and not artifact.deleted
            and os.path.abspath(artifact.uri).startswith(root)
        ),
        key=lambda a: a.id,
    )


def versions_to_delete(committed: list[int], pinned: int | None, keep: int) -> list[int]:
    """Committed serving versions past the newest `keep`, never the pinned one."""
    check_keep(keep)
    kept = set(sorted(committed, reverse=True)[:keep])
    if pinned is not None:
        kept.add(pinned)
    return sorted(v for v in committed if v not in kept)
