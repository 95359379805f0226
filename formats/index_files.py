"""The on-disk layout of a related-items index, shared by the ScannIndexer (writes) and serving (reads).

No TFX and no TensorFlow here: a searcher is loaded through ScaNN's extension alone (`scann_runtime`).

An index directory holds:
    scann/            ScaNN's own serialization (`searcher.serialize`)
    item_ids.txt      one item id per line, in row order (UTF-8; undecodable bytes kept via surrogateescape)
    embeddings.npy    the indexed vectors, float32 [num_items, dim]
    queries.npy       optional: each item's query vector, float32 [num_items, dim]; where absent, an item is
                      queried with its own indexed vector (cosine neighbours). The `pin2vec` index has one:
                      items are indexed by their softmax rows and queried with their hidden layers.
    index.json        build settings, sizes, recall, ScaNN version; written last, so it marks a complete index
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT_VERSION = 1
SCANN_DIR = "scann"
ITEM_IDS_FILE = "item_ids.txt"
EMBEDDINGS_FILE = "embeddings.npy"
QUERIES_FILE = "queries.npy"
METADATA_FILE = "index.json"
DISTANCE = "dot_product"

# Item ids are bytes in the vocabulary; this codec round-trips any bytes through `str`.
ID_ENCODING = "utf-8"
ID_ERRORS = "surrogateescape"
# ScaNN pickles doc ids into this file when a searcher is built with `docids`; we never do and never load it.
_SCANN_PICKLE = "scann_docids.pkl"


def encode_item_id(item_id: str) -> bytes:
    """The vocabulary's bytes for an id decoded by `decode_item_id`."""
    return item_id.encode(ID_ENCODING, ID_ERRORS)


def decode_item_id(raw: bytes) -> str:
    """Vocabulary bytes -> str without losing bytes that are not UTF-8."""
    return raw.decode(ID_ENCODING, ID_ERRORS)


def scann_module():
    """ScaNN, imported on first use: it loads TensorFlow (~40 s), which readers of vectors never need."""
    try:
        import scann
    except ImportError as error:
        raise ImportError(
            "The ScaNN index needs the `scann` package (pinned in pyproject.toml); install the project's "
            "dependencies, e.g. `make setup`"
        ) from error
    return scann


def validate_embeddings(embeddings: Any, name: str = "embeddings") -> np.ndarray:
    """`embeddings` as a float array, or an error saying what is wrong with it."""
    array = np.asarray(embeddings)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [num_items, dim]; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must hold floats; got dtype {array.dtype}")
    if array.shape[1] < 1:
        raise ValueError(f"{name} must have at least 1 dimension per row; got shape {array.shape}")
    bad_rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad_rows.size:
        raise ValueError(
            f"{name} has NaN or infinite values in {bad_rows.size} of {array.shape[0]} rows "
            f"(first: row {bad_rows[0]}); expected finite values"
        )
    return array


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32; all-zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _check_item_ids(item_ids: Sequence[str], num_rows: int) -> None:
    if len(item_ids) != num_rows:
        raise ValueError(f"got {len(item_ids)} item ids for {num_rows} embedding rows; expected one per row")
    for row, item_id in enumerate(item_ids):
        if not isinstance(item_id, str):
            raise ValueError(f"item id at row {row} is {type(item_id).__name__} {item_id!r}; expected str")
        if "\n" in item_id:
            raise ValueError(
                f"item id at row {row} contains a newline: {item_id!r}; item_ids.txt is one per line"
            )
    if len(set(item_ids)) != len(item_ids):
        seen: set[str] = set()
        duplicate = next(i for i in item_ids if i in seen or seen.add(i))
        raise ValueError(f"item ids must be unique; {duplicate!r} appears more than once")


def write_index(
    searcher,
    item_ids: Sequence[str],
    vectors: np.ndarray,
    directory: str,
    build: dict[str, Any],
    queries: np.ndarray | None = None,
) -> dict[str, Any]:
    """Writes the index directory (see the module docstring) and returns the metadata written to index.json:
    `build` (how the index was built and checked) plus the layout's own fields.

    `directory` must be absent or empty. index.json goes last, atomically, so a reader that finds it finds the
    rest complete.
    """
    vectors = np.ascontiguousarray(validate_embeddings(vectors), dtype=np.float32)
    num_items, dim = vectors.shape
    _check_item_ids(item_ids, num_items)
    if queries is not None:
        queries = np.ascontiguousarray(validate_embeddings(queries, name="queries"), dtype=np.float32)
        if queries.shape != vectors.shape:
            raise ValueError(
                f"queries have shape {queries.shape}; expected the vectors' shape {vectors.shape}"
            )
    if os.path.isdir(directory) and os.listdir(directory):
        raise ValueError(f"index directory {directory} is not empty; expected an absent or empty directory")
    scann_dir = os.path.join(directory, SCANN_DIR)
    os.makedirs(scann_dir, exist_ok=True)
    searcher.serialize(scann_dir)
    with open(os.path.join(directory, ITEM_IDS_FILE), "wb") as f:
        f.write(b"".join(encode_item_id(item_id) + b"\n" for item_id in item_ids))
    np.save(os.path.join(directory, EMBEDDINGS_FILE), vectors, allow_pickle=False)
    if queries is not None:
        np.save(os.path.join(directory, QUERIES_FILE), queries, allow_pickle=False)
    metadata = {
        **build,
        "format_version": FORMAT_VERSION,
        "num_items": num_items,
        "dimensions": dim,
        "distance": DISTANCE,
        "scann_version": importlib.metadata.version("scann"),
    }
    temporary = os.path.join(directory, f".{METADATA_FILE}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)
    os.replace(temporary, os.path.join(directory, METADATA_FILE))
    return metadata


def load_searcher(scann_dir: str):
    """ScaNN's `load_searcher`, but with asset paths re-rooted at `scann_dir`.

    `serialize` records absolute asset paths, which break when the index directory is moved (the pusher
    renames a temporary directory into place); and `load_searcher` would unpickle `scann_docids.pkl` if one
    were there. So this reads the assets list itself and refuses the pickle. TensorFlow's Python side is never
    imported (`scann_runtime`), so a server or a CLI query starts in well under a second.
    """
    from google.protobuf import text_format

    from formats import scann_runtime

    if os.path.exists(os.path.join(scann_dir, _SCANN_PICKLE)):
        raise ValueError(
            f"{scann_dir} holds {_SCANN_PICKLE}; refusing to unpickle it (write_index never writes it)"
        )
    assets_path = os.path.join(scann_dir, "scann_assets.pbtxt")
    if not os.path.isfile(assets_path):
        raise ValueError(
            f"no scann_assets.pbtxt in {scann_dir}; expected ScaNN's serialization of the searcher"
        )
    with open(assets_path, encoding="utf-8") as f:
        assets = text_format.Parse(f.read(), scann_runtime.assets_proto().ScannAssets())
    for asset in assets.assets:
        asset.asset_path = os.path.join(os.path.abspath(scann_dir), os.path.basename(asset.asset_path))
        if not os.path.isfile(asset.asset_path):
            raise ValueError(f"ScaNN asset {asset.asset_path} listed in {assets_path} is missing")
    return scann_runtime.load_searcher(scann_dir, text_format.MessageToString(assets))


def load_vectors(directory: str) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(item_ids, embeddings, metadata) of a `write_index` directory, checked, without importing ScaNN (and so
    TensorFlow, ~40 s): what exports and candidate-table servers need."""
    metadata_path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(metadata_path):
        raise ValueError(
            f"no {METADATA_FILE} in {directory}: not a complete index (write_index writes it last)"
        )
    with open(metadata_path, encoding="utf-8") as f:
        metadata = json.load(f)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{metadata_path} has format_version {metadata.get('format_version')!r}; this code reads "
            f"{FORMAT_VERSION}"
        )
    with open(os.path.join(directory, ITEM_IDS_FILE), "rb") as f:
        lines = f.read().split(b"\n")
    if lines[-1] != b"":
        raise ValueError(f"{os.path.join(directory, ITEM_IDS_FILE)} does not end with a newline: truncated?")
    item_ids = [decode_item_id(line) for line in lines[:-1]]
    embeddings = np.load(os.path.join(directory, EMBEDDINGS_FILE), allow_pickle=False)
    expected_shape = (metadata["num_items"], metadata["dimensions"])
    if embeddings.shape != expected_shape or len(item_ids) != expected_shape[0]:
        raise ValueError(
            f"index in {directory} is inconsistent: {METADATA_FILE} says {expected_shape[0]} items x "
            f"{expected_shape[1]} dims, {EMBEDDINGS_FILE} has shape {embeddings.shape}, {ITEM_IDS_FILE} has "
            f"{len(item_ids)} ids"
        )
    return item_ids, embeddings, metadata


def load_queries(directory: str, embeddings: np.ndarray) -> np.ndarray:
    """Each item's query vector: `queries.npy` where the index has one, else its own indexed vector."""
    path = os.path.join(directory, QUERIES_FILE)
    if not os.path.isfile(path):
        return embeddings
    queries = np.load(path, allow_pickle=False)
    if queries.shape != embeddings.shape:
        raise ValueError(
            f"index in {directory} is inconsistent: {QUERIES_FILE} has shape {queries.shape}, "
            f"{EMBEDDINGS_FILE} {embeddings.shape}"
        )
    return queries


def load_index(directory: str) -> tuple[Any, list[str], np.ndarray, dict[str, Any]]:
    """(searcher, item_ids, embeddings, metadata) of a `write_index` directory, wherever it is now."""
    item_ids, embeddings, metadata = load_vectors(directory)
    searcher = load_searcher(os.path.join(directory, SCANN_DIR))
    return searcher, item_ids, embeddings, metadata
