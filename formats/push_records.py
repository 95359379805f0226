"""Which pushed versions are whole and intact: per-model file manifests and per-version commit records.

A push writes several models under one version number (`<serving>/<model>/<version>/`). Each model version
carries `MANIFEST.json`, every file's size and sha256. The version becomes visible to this project's readers
(`pin2vec serve`, `pin2vec related`, exports) only when `<serving>/versions/<version>.json` exists: the commit
record, written in one atomic rename after every model it lists is in place, naming each model and its
manifest's sha256. So a reader sees a version whole or not at all, and a file changed after the push
(truncated, garbled, reordered, replaced by a copy) makes that model version fail its check and be skipped for
the newest good one.

A serving directory pushed before commit records existed has no `versions/` directory: its versions are all
read as before, without checks. The pusher records them (`serving_layout.publish_version`) when it first
creates `versions/`, so they stay visible.

A rollback pins serving to an earlier committed version (`versions/pinned.json`): every reader then treats
newer versions as not there, without anything being deleted, until the pin is released.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

MANIFEST_FILE = "MANIFEST.json"
COMMITS_DIR = "versions"  # <serving>/versions/<version>.json
PIN_FILE = "pinned.json"  # in COMMITS_DIR: {"version", "at", "by"}: serve nothing newer (a rollback)
HISTORY_FILE = "rollbacks.jsonl"  # in COMMITS_DIR: every pin and release, one JSON object per line
MANIFEST_FORMAT = 1
_CHUNK = 1 << 20


class CorruptVersionError(ValueError):
    """A model version whose files do not match its manifest, or whose manifest does not match the commit."""


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _files_under(directory: str) -> list[str]:
    """Relative paths of every file under `directory` (sorted), the manifest itself excluded."""
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.relpath(os.path.join(root, name), directory)
            if path != MANIFEST_FILE:
                found.append(path)
    return sorted(found)


def write_manifest(directory: str) -> str:
    """Writes `directory`/MANIFEST.json (every file's size and sha256) and returns the manifest's sha256."""
    files = {}
    for path in _files_under(directory):
        full = os.path.join(directory, path)
        files[path] = {"size": os.path.getsize(full), "sha256": file_sha256(full)}
    data = json.dumps({"format": MANIFEST_FORMAT, "files": files}, sort_keys=True, indent=1).encode()
    with open(os.path.join(directory, MANIFEST_FILE), "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def verify_manifest(directory: str, expected_sha256: str | None) -> None:
    """Raises CorruptVersionError naming the first file that differs from the manifest (missing, extra, other
    size or content), or a manifest that is not the one `expected_sha256` (from the commit record) names."""
    path = os.path.join(directory, MANIFEST_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise CorruptVersionError(f"{directory} has no readable {MANIFEST_FILE}: {error}") from error
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise CorruptVersionError(f"{path} is not the manifest its commit record names (sha256 differs)")
    try:
        files = json.loads(data)["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptVersionError(f"{path} is not a manifest: {error}") from error
    present = _files_under(directory)
    extra = sorted(set(present) - set(files))
    if extra:
        raise CorruptVersionError(f"{directory} holds {extra[0]}, which its manifest does not list")
    for name, expected in sorted(files.items()):
        full = os.path.join(directory, name)
        if not os.path.isfile(full):
            raise CorruptVersionError(f"{full} is missing (listed in {MANIFEST_FILE})")
        size = os.path.getsize(full)
        if size != expected["size"]:
            raise CorruptVersionError(f"{full} has {size} bytes; its manifest says {expected['size']}")
        if file_sha256(full) != expected["sha256"]:
            raise CorruptVersionError(f"{full} differs from its manifest (sha256; same size)")


def commits_dir(serving_dir: str) -> str:
    return os.path.join(serving_dir, COMMITS_DIR)


def records_in_use(serving_dir: str) -> bool:
    """Whether this serving directory has commit records (else: a layout from before them)."""
    return os.path.isdir(commits_dir(serving_dir))


def committed(serving_dir: str) -> dict[int, dict]:
    """{version: commit record} of every committed version, oldest first."""
    directory = commits_dir(serving_dir)
    if not os.path.isdir(directory):
        return {}
    records = {}
    for name in os.listdir(directory):
        stem, ext = os.path.splitext(name)
        if ext != ".json" or not (stem.isascii() and stem.isdigit()):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                records[int(stem)] = json.load(f)
        except (OSError, ValueError):
            continue  # unreadable: not committed (written atomically, so only damage leads here)
    return dict(sorted(records.items()))


def write_commit(serving_dir: str, version: int, record: dict, directory: str | None = None) -> None:
    """Makes `version` visible: its record appears in one rename (in `directory`: a staging copy of the
    records directory)."""
    directory = directory or commits_dir(serving_dir)
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{version}.tmp-{uuid.uuid4().hex[:8]}")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(record, f, sort_keys=True, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(directory, f"{version}.json"))


def pinned_version(serving_dir: str) -> int | None:
    """The version a rollback pinned serving to (None: serve the newest)."""
    try:
        with open(os.path.join(commits_dir(serving_dir), PIN_FILE), encoding="utf-8") as f:
            return int(json.load(f)["version"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        path = os.path.join(commits_dir(serving_dir), PIN_FILE)
        raise CorruptVersionError(f"{path} is unreadable: {error}") from error


def write_pin(serving_dir: str, version: int | None, note: dict) -> None:
    """Pins serving to `version` (None: releases the pin), atomically, and appends `note` to the history."""
    directory = commits_dir(serving_dir)
    path = os.path.join(directory, PIN_FILE)
    if version is None:
        if os.path.exists(path):
            os.remove(path)
    else:
        temporary = os.path.join(directory, f".{PIN_FILE}.tmp-{uuid.uuid4().hex[:8]}")
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({**note, "version": version}, f, sort_keys=True)
        os.replace(temporary, path)
    with open(os.path.join(directory, HISTORY_FILE), "a", encoding="utf-8") as f:
        f.write(json.dumps({**note, "version": version}, sort_keys=True) + "\n")


def manifest_of(serving_dir: str, model: str, version: int) -> tuple[bool, str | None]:
    """(visible, expected manifest sha256) of one model version: visible when the serving directory has no
    commit records (legacy), or its version's record lists the model and it is not after a pinned version;
    the sha256 is None for legacy ones."""
    if not records_in_use(serving_dir):
        return True, None
    pinned = pinned_version(serving_dir)
    if pinned is not None and version > pinned:
        return False, None
    path = os.path.join(commits_dir(serving_dir), f"{version}.json")
    try:
        with open(path, encoding="utf-8") as f:
            models = json.load(f).get("models", {})
    except (OSError, ValueError):
        return False, None
    if model not in models:
        return False, None
    return True, models[model]


def _locate(version_dir: str) -> tuple[str, str, int]:
    """(serving dir, model, version) of `<serving>/<model>/<version>`."""
    model_base = os.path.dirname(os.path.abspath(version_dir))
    version = int(os.path.basename(os.path.abspath(version_dir)))
    return os.path.dirname(model_base), os.path.basename(model_base), version


def committed_with_manifest(version_dir: str) -> bool:
    """Whether a commit record names this model version with its manifest: it was published whole, so a file
    missing from it now is damage, not a push still in progress."""
    visible, digest = manifest_of(*_locate(version_dir))
    return visible and digest is not None


def check_model_version(version_dir: str) -> None:
    """Raises CorruptVersionError unless the model version at `<serving>/<model>/<version>` is committed and
    matches its manifest (no check for a legacy serving directory's versions)."""
    serving_dir, model, version = _locate(version_dir)
    visible, digest = manifest_of(serving_dir, model, version)
    if not visible:
        raise CorruptVersionError(
            f"{version_dir} is not committed (no {COMMITS_DIR}/{version}.json lists it) or is newer than the "
            f"version serving is pinned to ({COMMITS_DIR}/{PIN_FILE})"
        )
    if digest is not None:
        verify_manifest(version_dir, digest)
