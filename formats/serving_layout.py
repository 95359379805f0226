"""Versioned, atomic publishing in TF Serving's layout: `<base>/<model_name>/<version>/`.

A version directory appears only complete: it is written under a dot-prefixed temporary name (which
servers ignore) and renamed into place, so a reader never sees a half-written model or index. A pipeline's
push (`publish_version`) goes further: all its models become visible in one step, through a commit record
(formats/push_records.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import uuid

from formats import push_records

EMBEDDING_MODEL = "embedding"  # the SavedModel, loadable by stock TF Serving
PIN2VEC_MODEL = "pin2vec"  # the next-engagement index (softmax rows x hidden layers)
PIN2VEC_SIMILAR_MODEL = "pin2vec_similar"  # the cosine index over hidden layers (item embeddings)
COOCCURRENCE_MODEL = "cooccurrence"  # co-occurrence candidate table
BOARD_MODEL = "board"  # board co-occurrence candidate table (items saved to the same collections)
BLEND_MODEL = "blend"  # blended candidate table
# Session co-occurrence over every event of the window, rare and new items included (formats/coldstart.py):
# what `related` falls back to for items the default source lacks.
COLDSTART_MODEL = "coldstart"
EVALUATION_MODEL = "evaluation"  # evaluation.json (which source is best) and the run report
# Not a folder: the model a client calls by default, answering from the source the last push chose
# (SERVED_SOURCES_FILE's default_source), the same one `pin2vec related` answers from.
DEFAULT_MODEL = "related"

# Each related-items source (as evaluation.json and `pin2vec related --source` name it) -> its model folder.
# `pin2vec` is what the network predicts next; `pin2vec_similar` its cosine neighbours (substitutes).
SOURCE_MODELS = {
    "pin2vec": PIN2VEC_MODEL,
    "pin2vec_similar": PIN2VEC_SIMILAR_MODEL,
    "cooccurrence": COOCCURRENCE_MODEL,
    "board": BOARD_MODEL,
    "blend": BLEND_MODEL,
    "coldstart": COLDSTART_MODEL,
}
INDEX_SOURCES = ("pin2vec", "pin2vec_similar")  # served from ScaNN index directories, the rest from tables


def existing_versions(model_base: str) -> list[int]:
    if not os.path.isdir(model_base):
        return []
    # ASCII digits only, like the server's version scan: str.isdigit() also accepts "²", which int() rejects.
    return sorted(int(name) for name in os.listdir(model_base) if name.isascii() and name.isdigit())


def next_version(model_bases: list[str], now: float | None = None) -> int:
    """Seconds since the epoch, like TF Serving's exporters, but always above every existing version."""
    latest = max((v for base in model_bases for v in existing_versions(base)), default=0)
    return max(int(now if now is not None else time.time()), latest + 1)


# In each pushed evaluation version: {"default_source", "models", "kept_back"}, what serving answers from.
SERVED_SOURCES_FILE = "served_sources.json"
# Staging directories older than this are leftovers of a killed push, removed by the next one.
STALE_STAGING_S = 3600.0
MODELS = (EMBEDDING_MODEL, *SOURCE_MODELS.values(), EVALUATION_MODEL)


@dataclasses.dataclass(frozen=True)
class PushResult:
    version: int
    already_serving: bool  # these artifacts were already committed (and are intact) as `version`
    completed: tuple[str, ...] = ()  # models a push killed after its commit had not published yet


def publish_version(
    serving_dir: str,
    sources: dict[str, str],
    provenance: dict[str, str],
    extra_json: dict[str, dict[str, dict]] | None = None,
) -> PushResult:
    """Publishes every model of `sources` (model name -> directory) as one version, visible whole or not at
    all (formats/push_records.py): each is staged with its manifest, renamed into place, then the commit
    record appears; `embedding` (which stock TF Serving reads, without records) goes last, after the commit.

    When the newest commit came from the same `provenance` (artifact URIs), nothing is pushed again: its
    models are checked against their manifests, and any that a killed push had not published are published
    under the same version. A damaged one means a new version. `extra_json`: model -> {file name: object}
    written into that model's copy."""
    extra_json = extra_json or {}
    adopt_legacy_versions(serving_dir)
    records = push_records.committed(serving_dir)
    newest = max(records, default=None)
    if newest is not None and records[newest].get("provenance") == provenance:
        completed = _complete(serving_dir, newest, records[newest], sources, extra_json)
        if completed is not None:
            return PushResult(newest, True, tuple(completed))
    _remove_leftovers(serving_dir, newest)
    bases = [os.path.join(serving_dir, name) for name in MODELS]
    version = max(next_version(bases), (newest or 0) + 1)
    staged = {
        name: _stage(uri, os.path.join(serving_dir, name), version, extra_json.get(name))
        for name, uri in sources.items()
    }
    try:
        order = sorted(staged, key=lambda name: name == EMBEDDING_MODEL)  # embedding last
        for name in order[:-1] if order[-1] == EMBEDDING_MODEL else order:
            os.rename(staged[name][0], os.path.join(serving_dir, name, str(version)))
            _fault_point(f"after-rename-{name}")
        record = {
            "models": {name: digest for name, (_, digest) in staged.items()},
            "provenance": provenance,
            "pushed_at": time.time(),
        }
        push_records.write_commit(serving_dir, version, record)
        _fault_point("after-commit")
        if EMBEDDING_MODEL in staged:
            os.rename(staged[EMBEDDING_MODEL][0], os.path.join(serving_dir, EMBEDDING_MODEL, str(version)))
    finally:
        for staging, _ in staged.values():
            shutil.rmtree(staging, ignore_errors=True)
    return PushResult(version, False)


def _fault_point(name: str) -> None:
    """The fault suite's kill switch: with PIN2VEC_KILL_AT=<name>, the process dies here as `kill -9` would
    (no cleanup, no exception handlers)."""
    if os.environ.get("PIN2VEC_KILL_AT") == name:
        os._exit(137)


def _stage(source: str, model_base: str, version: int, extra_json: dict[str, dict] | None) -> tuple[str, str]:
    """(staging directory, manifest sha256): `source` copied under a dot-prefixed name servers ignore."""
    if not os.path.isdir(source):
        raise FileNotFoundError(f"Nothing to push: {source} is not a directory")
    os.makedirs(model_base, exist_ok=True)
    staging = os.path.join(model_base, f".{version}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(source, staging)
        for name, values in (extra_json or {}).items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
                json.dump(values, f, sort_keys=True)
        return staging, push_records.write_manifest(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _complete(serving_dir, version, record, sources, extra_json) -> list[str] | None:
    """The models of a committed version published again where missing (a push killed after its commit);
    None when one of them is damaged, or cannot be rebuilt identically, so a new version is needed."""
    completed = []
    for name, digest in record.get("models", {}).items():
        final = os.path.join(serving_dir, name, str(version))
        if os.path.isdir(final):
            try:
                push_records.verify_manifest(final, digest)
            except push_records.CorruptVersionError:
                return None
            continue
        if name not in sources or digest is None:
            return None
        staging, staged_digest = _stage(
            sources[name], os.path.join(serving_dir, name), version, extra_json.get(name)
        )
        if staged_digest != digest:
            shutil.rmtree(staging, ignore_errors=True)
            return None
        os.rename(staging, final)
        completed.append(name)
    return completed


def _remove_leftovers(serving_dir: str, newest_committed: int | None) -> None:
    """Version directories newer than the newest commit (a push killed before its commit: never visible to
    this project's readers) and stale staging directories."""
    now = time.time()
    for name in MODELS:
        base = os.path.join(serving_dir, name)
        if not os.path.isdir(base):
            continue
        for version in existing_versions(base):
            if newest_committed is None or version > newest_committed:
                shutil.rmtree(os.path.join(base, str(version)), ignore_errors=True)
        for entry in os.listdir(base):
            path = os.path.join(base, entry)
            if entry.startswith(".") and ".tmp-" in entry and now - os.path.getmtime(path) > STALE_STAGING_S:
                shutil.rmtree(path, ignore_errors=True)


def adopt_legacy_versions(serving_dir: str) -> None:
    """Turns commit records on for a serving directory pushed before them, recording every version already
    there (without a manifest to check) so that none disappears. All records appear in one rename."""
    if push_records.records_in_use(serving_dir):
        return
    by_version: dict[int, dict[str, None]] = {}
    for model in MODELS:
        for version in existing_versions(os.path.join(serving_dir, model)):
            by_version.setdefault(version, {})[model] = None
    os.makedirs(serving_dir, exist_ok=True)
    staging = os.path.join(serving_dir, f".{push_records.COMMITS_DIR}.tmp-{uuid.uuid4().hex[:8]}")
    for version, listed in by_version.items():
        push_records.write_commit(serving_dir, version, {"models": listed, "legacy": True}, directory=staging)
    os.makedirs(staging, exist_ok=True)
    os.rename(staging, push_records.commits_dir(serving_dir))


def publish_directory(
    source: str, model_base: str, version: int, extra_json: dict[str, dict] | None = None
) -> str:
    """Copies `source` to `<model_base>/<version>` atomically and returns the final path; `extra_json`
    (file name -> object) is written into the copy before it appears. One model, no commit record: for tests
    and benches that serve a directory of their own (a pipeline's push is `publish_version`)."""
    if not os.path.isdir(source):
        raise FileNotFoundError(f"Nothing to push: {source} is not a directory")
    final = os.path.join(model_base, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"Version {version} already exists at {final}; versions are never overwritten")
    os.makedirs(model_base, exist_ok=True)
    staging = os.path.join(model_base, f".{version}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(source, staging)
        for name, values in (extra_json or {}).items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
                json.dump(values, f, sort_keys=True)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
