"""Versioned, atomic publishing in TF Serving's layout: `<base>/<model_name>/<version>/`.

A version directory appears only complete: it is written under a dot-prefixed temporary name (which
servers ignore) and renamed into place, so a reader never sees a half-written model or index.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

EMBEDDING_MODEL = "embedding"  # the SavedModel, loadable by stock TF Serving
PIN2VEC_MODEL = "pin2vec"  # the next-engagement index (softmax rows x hidden layers)
PIN2VEC_SIMILAR_MODEL = "pin2vec_similar"  # the cosine index over hidden layers (item embeddings)
COOCCURRENCE_MODEL = "cooccurrence"  # co-occurrence candidate table
BOARD_MODEL = "board"  # board co-occurrence candidate table (items saved to the same collections)
BLEND_MODEL = "blend"  # blended candidate table
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


PROVENANCE_FILE = "pushed_from.json"
# In each pushed evaluation version: {"default_source", "models", "kept_back"}, what serving answers from.
SERVED_SOURCES_FILE = "served_sources.json"


def write_provenance(directory: str, provenance: dict[str, str]) -> None:
    """Records the artifacts (name -> URI) a version was pushed from, so a rerun does not push twice."""
    with open(os.path.join(directory, PROVENANCE_FILE), "w", encoding="utf-8") as f:
        json.dump(provenance, f, sort_keys=True)


def already_pushed_version(model_base: str, provenance: dict[str, str]) -> int | None:
    """The latest version, if it was pushed from exactly these artifacts."""
    versions = existing_versions(model_base)
    if not versions:
        return None
    path = os.path.join(model_base, str(versions[-1]), PROVENANCE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            pushed = json.load(f)
    except (OSError, ValueError):
        return None
    return versions[-1] if pushed == provenance else None


def publish_directory(
    source: str,
    model_base: str,
    version: int,
    provenance: dict[str, str] | None = None,
    extra_json: dict[str, dict] | None = None,
) -> str:
    """Copies `source` to `<model_base>/<version>` atomically and returns the final path; `extra_json`
    (file name -> object) is written into the copy before it appears."""
    if not os.path.isdir(source):
        raise FileNotFoundError(f"Nothing to push: {source} is not a directory")
    final = os.path.join(model_base, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"Version {version} already exists at {final}; versions are never overwritten")
    os.makedirs(model_base, exist_ok=True)
    staging = os.path.join(model_base, f".{version}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(source, staging)
        if provenance:
            write_provenance(staging, provenance)
        for name, values in (extra_json or {}).items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
                json.dump(values, f, sort_keys=True)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
