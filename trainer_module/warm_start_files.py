"""What a trained model leaves for the next warm start, and how it was itself started: plain files, no pickle.

The Model artifact holds the serving SavedModel in `Format-Serving/` and, beside it, `WarmStart/`:
`item_ids.txt` (the vocabulary, one id per line in row order; the rows after it are OOV buckets), one `.npy`
per trained array (`item_embedding`, `softmax_weights`, `softmax_biases`: a row per item then per OOV bucket;
`hidden_bias`: shared) and per optimizer slot of each (`<array>.<slot>.npy`, e.g. Adagrad's
`item_embedding.accumulator`; `optimizer.iterations`), and `warm_start.json` (format version, sizes, the
arrays, and `started`: warm or cold, items carried over, new and dropped). The SavedModel is not read back
instead: it stores the hidden layer after the ELU (normalised rows and their norms), not the raw item table
nor the optimizer state, and its variables are named by the export module's attribute paths; these files
are written and read by this module alone, load with `allow_pickle=False`, and stay out of the pushed
serving copy (the pusher copies `Format-Serving/` only).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

WARM_START_DIR = "WarmStart"  # in the Model artifact, beside Format-Serving
MANIFEST_FILE = "warm_start.json"
ITEM_IDS_FILE = "item_ids.txt"
FORMAT_VERSION = 1
ROW_ARRAYS = ("item_embedding", "softmax_weights", "softmax_biases")  # one row per item, then OOV rows
SHARED_ARRAYS = ("hidden_bias",)
_ARRAY_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")  # "<array>" or "<array>.<optimizer slot>"


def is_row_array(name: str) -> bool:
    """Whether array `name` (a weight or one of its optimizer slots) has a row per item."""
    return name.split(".")[0] in ROW_ARRAYS


class WarmStartFilesError(ValueError):
    """The base model's warm-start files are missing or unreadable; the message names the path."""


@dataclass(frozen=True)
class StartReport:
    """How a model was started: recorded in its files and on its Model artifact in ML Metadata."""

    warm: bool
    carried_over: int = 0
    new: int = 0
    dropped: int = 0
    base_model: str = ""  # the base Model artifact's directory, when there was one
    note: str = ""  # why a run given a base model started cold


@dataclass(frozen=True)
class ModelState:
    """The trained arrays and the vocabulary their rows belong to."""

    item_ids: list[bytes]
    arrays: dict[str, np.ndarray]
    num_oov_buckets: int


def model_artifact_dir(serving_model_dir: str) -> str:
    """The Model artifact's directory from its `Format-Serving` SavedModel path (fn_args' `base_model`)."""
    return os.path.dirname(serving_model_dir.rstrip("/"))


def warm_start_dir(model_artifact_uri: str) -> str:
    return os.path.join(model_artifact_uri, WARM_START_DIR)


def write_model_state(model_artifact_uri: str, state: ModelState, started: StartReport) -> str:
    """Writes `WarmStart/` into the Model artifact; returns its path."""
    directory = warm_start_dir(model_artifact_uri)
    tf.io.gfile.makedirs(directory)
    if any(b"\n" in item for item in state.item_ids):
        raise ValueError("an item id contains a newline; it cannot be written one per line")
    with tf.io.gfile.GFile(os.path.join(directory, ITEM_IDS_FILE), "wb") as f:
        f.write(b"".join(item + b"\n" for item in state.item_ids))
    for name, array in state.arrays.items():
        if not _ARRAY_NAME.match(name):
            raise ValueError(f"array name {name!r} is not <array>[.<slot>]")
        with tf.io.gfile.GFile(os.path.join(directory, f"{name}.npy"), "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)
    manifest = {
        "format_version": FORMAT_VERSION,
        "vocabulary_size": len(state.item_ids),
        "num_oov_buckets": state.num_oov_buckets,
        "arrays": sorted(state.arrays),
        "started": asdict(started),
    }
    with tf.io.gfile.GFile(os.path.join(directory, MANIFEST_FILE), "w") as f:
        json.dump(manifest, f, indent=1)
    return directory


def _manifest(directory: str) -> dict:
    path = os.path.join(directory, MANIFEST_FILE)
    if not tf.io.gfile.exists(path):
        raise WarmStartFilesError(
            f"{path} is missing: the base model was trained before warm start existed or its files were "
            "removed; this run starts cold (pass --cold-start to say so)"
        )
    try:
        with tf.io.gfile.GFile(path) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise WarmStartFilesError(f"{path}: unreadable ({error})") from error
    if manifest.get("format_version") != FORMAT_VERSION:
        raise WarmStartFilesError(
            f"{path}: format_version {manifest.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    return manifest


def read_model_state(model_artifact_uri: str) -> ModelState:
    """The base model's vocabulary and arrays, checked against each other."""
    directory = warm_start_dir(model_artifact_uri)
    manifest = _manifest(directory)
    with tf.io.gfile.GFile(os.path.join(directory, ITEM_IDS_FILE), "rb") as f:
        item_ids = f.read().split(b"\n")[:-1]
    if len(item_ids) != manifest["vocabulary_size"]:
        raise WarmStartFilesError(
            f"{directory}/{ITEM_IDS_FILE}: {len(item_ids)} ids, "
            f"the manifest says {manifest['vocabulary_size']}"
        )
    arrays = {}
    names = manifest.get("arrays", [])
    if not set(ROW_ARRAYS + SHARED_ARRAYS) <= set(names) or not all(map(_ARRAY_NAME.match, names)):
        raise WarmStartFilesError(
            f"{directory}/{MANIFEST_FILE}: arrays {names} must name {list(ROW_ARRAYS + SHARED_ARRAYS)} and "
            "optimizer slots as <array>.<slot>"
        )
    for name in names:
        path = os.path.join(directory, f"{name}.npy")
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                arrays[name] = np.load(f, allow_pickle=False)
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise WarmStartFilesError(f"{path}: unreadable ({error})") from error
        rows = len(item_ids) + manifest["num_oov_buckets"]
        if is_row_array(name) and arrays[name].shape[0] != rows:
            raise WarmStartFilesError(f"{path}: {arrays[name].shape[0]} rows, expected {rows}")
    return ModelState(item_ids, arrays, int(manifest["num_oov_buckets"]))


def read_start_report(model_artifact_uri: str) -> StartReport | None:
    """How the model in this artifact was started; None when it has no warm-start files."""
    try:
        manifest = _manifest(warm_start_dir(model_artifact_uri))
    except WarmStartFilesError:
        return None
    return StartReport(**manifest["started"])
