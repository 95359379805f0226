"""The related-items index as pure functions: build a ScaNN index over item embeddings, check its recall
against exact search, save it to a directory and load it back. No TFX here, so all of it is unit-testable.

Similarity is the dot product; with `normalize` (the default) rows are scaled to unit length first, so it is
the cosine similarity that `trainer_module.export` scores with.

An index directory holds:
    scann/            ScaNN's own serialization (`searcher.serialize`)
    item_ids.txt      one item id per line, in row order (UTF-8; undecodable bytes kept via surrogateescape)
    embeddings.npy    the indexed vectors, float32 [num_items, dim] (normalized when `normalize`)
    index.json        settings, sizes, recall, ScaNN version; written last, so it marks a complete index
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from absl import logging

FORMAT_VERSION = 1
SCANN_DIR = "scann"
ITEM_IDS_FILE = "item_ids.txt"
EMBEDDINGS_FILE = "embeddings.npy"
METADATA_FILE = "index.json"
DISTANCE = "dot_product"

# Item ids are bytes in the vocabulary; this codec round-trips any bytes through `str`.
ID_ENCODING = "utf-8"
ID_ERRORS = "surrogateescape"
# Exact search scores at most this many (query, item) pairs at once: 2**26 float32 = 256 MiB.
_EXACT_SEARCH_CHUNK = 2**26
# ScaNN pickles doc ids into this file when a searcher is built with `docids`; we never do and never load it.
_SCANN_PICKLE = "scann_docids.pkl"


@dataclasses.dataclass(frozen=True)
class IndexSettings:
    """How the index is built and when it is good enough to push."""

    num_neighbors: int = 10  # k the index is built and checked for
    num_leaves: int | None = None  # None: about sqrt(num_items)
    num_leaves_to_search: int | None = None  # None: a tenth of the leaves, at least 1
    training_sample_size: int = 250_000  # rows sampled to train the partitioner and the quantizer
    dimensions_per_block: int = 2  # asymmetric hashing: dimensions quantized together
    anisotropic_quantization_threshold: float = 0.2  # ScaNN's advice for unit-norm data
    reorder_multiplier: int = 10  # rescore num_neighbors * this candidates exactly
    brute_force_below: int = 2000  # fewer items than this: exact brute force, partitioning does not pay off
    normalize: bool = True  # cosine similarity via dot products of unit vectors
    recall_sample_size: int = 1000  # queries sampled for the recall check
    min_recall: float = 0.9  # recall@k vs exact search at or above which the index is blessed
    seed: int = 0  # for the recall sample

    def __post_init__(self):
        for name in (
            "num_neighbors",
            "training_sample_size",
            "dimensions_per_block",
            "reorder_multiplier",
            "recall_sample_size",
        ):
            _check_int(self, name, minimum=1)
        for name in ("num_leaves", "num_leaves_to_search"):
            if getattr(self, name) is not None:
                _check_int(self, name, minimum=1)
        _check_int(self, "brute_force_below", minimum=0)
        _check_int(self, "seed", minimum=0)
        if (
            self.num_leaves is not None
            and self.num_leaves_to_search is not None
            and self.num_leaves_to_search > self.num_leaves
        ):
            raise ValueError(
                f"IndexSettings.num_leaves_to_search={self.num_leaves_to_search} is more than "
                f"num_leaves={self.num_leaves}; expected at most num_leaves"
            )
        for name in ("anisotropic_quantization_threshold", "min_recall"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"IndexSettings.{name} must be a number; got {value!r}")
        if not self.min_recall >= 0:
            raise ValueError(f"IndexSettings.min_recall must be >= 0; got {self.min_recall}")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"IndexSettings.normalize must be true or false; got {self.normalize!r}")


def _check_int(settings: IndexSettings, name: str, minimum: int) -> None:
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"IndexSettings.{name} must be an integer >= {minimum}; got {value!r}")


def settings_to_json(settings: IndexSettings) -> str:
    """The component's `index_config` execution property: JSON, so MLMD shows it and caching keys on it."""
    return json.dumps(dataclasses.asdict(settings), sort_keys=True)


def settings_from_json(text: str) -> IndexSettings:
    """Inverse of `settings_to_json`; missing fields take their defaults, unknown fields are an error."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"index_config is not valid JSON ({error}); got {text[:200]!r}") from error
    if not isinstance(values, dict):
        raise ValueError(f"index_config must be a JSON object of IndexSettings fields; got {text[:200]!r}")
    known = {field.name for field in dataclasses.fields(IndexSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"index_config has unknown fields {unknown}; IndexSettings fields are {sorted(known)}"
        )
    return IndexSettings(**values)


def is_blessed(recall: float, settings: IndexSettings) -> bool:
    """Whether an index with this recall@k may be pushed."""
    return recall >= settings.min_recall


def encode_item_id(item_id: str) -> bytes:
    """The vocabulary's bytes for an id decoded by `decode_item_id`."""
    return item_id.encode(ID_ENCODING, ID_ERRORS)


def decode_item_id(raw: bytes) -> str:
    """Vocabulary bytes -> str without losing bytes that are not UTF-8."""
    return raw.decode(ID_ENCODING, ID_ERRORS)


def _scann():
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


def prepare_embeddings(embeddings: Any, settings: IndexSettings) -> np.ndarray:
    """The vectors the index is built on: validated, float32, C-contiguous, unit rows when `normalize`."""
    array = validate_embeddings(embeddings)
    if array.shape[0] < 2:
        raise ValueError(f"need at least 2 items to build a related-items index; got {array.shape[0]}")
    if settings.normalize:
        array = normalize_rows(array)
        zero_rows = int(np.count_nonzero(~array.any(axis=1)))
        if zero_rows:
            logging.warning(
                "%d of %d embeddings are all zero: they are nobody's neighbour", zero_rows, len(array)
            )
    return np.ascontiguousarray(array, dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Partitioning:
    """The tree the index uses; `build_index` uses brute force when `resolve_partitioning` gives None."""

    num_leaves: int
    num_leaves_to_search: int


def resolve_partitioning(num_items: int, settings: IndexSettings) -> Partitioning | None:
    """Settings' defaults applied to this many items; None means exact brute-force scoring."""
    if num_items < settings.brute_force_below:
        return None
    num_leaves = settings.num_leaves or round(math.sqrt(num_items))
    num_leaves = min(max(num_leaves, 1), num_items)
    to_search = settings.num_leaves_to_search or max(1, math.ceil(num_leaves / 10))
    return Partitioning(num_leaves=num_leaves, num_leaves_to_search=min(to_search, num_leaves))


def build_index(embeddings: np.ndarray, settings: IndexSettings):
    """A ScaNN searcher over the rows of `embeddings` (row i is result id i).

    Tree partitioning + asymmetric hashing + exact reordering of `num_neighbors * reorder_multiplier`
    candidates; below `brute_force_below` items, exact brute force.
    """
    vectors = prepare_embeddings(embeddings, settings)
    num_items, dim = vectors.shape
    k = min(settings.num_neighbors, num_items)
    builder = _scann().scann_ops_pybind.builder(vectors, k, DISTANCE)
    partitioning = resolve_partitioning(num_items, settings)
    if partitioning is None:
        logging.info(
            "ScaNN index over %d x %d: brute force (fewer than brute_force_below=%d items)",
            num_items,
            dim,
            settings.brute_force_below,
        )
        return builder.score_brute_force().build()
    sample_size = min(settings.training_sample_size, num_items)
    logging.info(
        "ScaNN index over %d x %d: %d leaves, %d searched, AH with %d dims/block, reorder %d, sample %d",
        num_items,
        dim,
        partitioning.num_leaves,
        partitioning.num_leaves_to_search,
        settings.dimensions_per_block,
        k * settings.reorder_multiplier,
        sample_size,
    )
    return (
        builder.tree(
            num_leaves=partitioning.num_leaves,
            num_leaves_to_search=partitioning.num_leaves_to_search,
            training_sample_size=sample_size,
            # ScaNN's default of 50 would exceed the average leaf of a small tree.
            min_partition_size=max(1, min(50, num_items // (2 * partitioning.num_leaves))),
        )
        .score_ah(
            settings.dimensions_per_block,
            anisotropic_quantization_threshold=settings.anisotropic_quantization_threshold,
            training_sample_size=sample_size,
        )
        .reorder(k * settings.reorder_multiplier)
        .build()
    )


def exact_neighbors(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids [num_queries, k] of the k largest dot products with each query, best first.

    Scores a bounded number of (query, item) pairs at a time, so memory stays flat in the number of queries.
    """
    embeddings = validate_embeddings(embeddings)
    queries = validate_embeddings(queries, name="queries")
    num_items = embeddings.shape[0]
    if queries.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} dimensions but embeddings have {embeddings.shape[1]}"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= num_items:
        raise ValueError(f"k must be an integer in [1, {num_items}] (the number of embeddings); got {k!r}")
    chunk = max(1, _EXACT_SEARCH_CHUNK // num_items)
    result = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        scores = queries[start : start + chunk] @ embeddings.T
        if k < num_items:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(num_items), scores.shape)
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        result[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return result


def recall_at_k(approx_ids: Sequence[Sequence[int]], exact_ids: Sequence[Sequence[int]]) -> float:
    """Share of the exact neighbours that the approximate search also found, over all queries."""
    if len(approx_ids) != len(exact_ids):
        raise ValueError(
            f"approx_ids has {len(approx_ids)} rows but exact_ids has {len(exact_ids)}; expected one row per "
            "query in both"
        )
    found = expected = 0
    for row, (approx, exact) in enumerate(zip(approx_ids, exact_ids, strict=True)):
        if len(approx) > len(exact):
            raise ValueError(
                f"row {row}: {len(approx)} approximate ids for {len(exact)} exact ones; search both with the "
                "same k"
            )
        found += len({int(i) for i in approx} & {int(i) for i in exact})
        expected += len(exact)
    if expected == 0:
        raise ValueError("recall_at_k needs at least one query with at least one exact neighbour")
    return found / expected


class RecallSample(NamedTuple):
    """Seeded sample of indexed items as queries, with their exact neighbours: computed once per index."""

    queries: np.ndarray
    exact: np.ndarray
    k: int


def recall_sample(embeddings: np.ndarray, settings: IndexSettings) -> RecallSample:
    """Each query is an indexed item, so it is its own best match; it stays in both result lists, which keeps
    the comparison fair (removing it from one side only would count a miss that is not one)."""
    vectors = prepare_embeddings(embeddings, settings)
    num_items = vectors.shape[0]
    k = min(settings.num_neighbors, num_items)
    rng = np.random.default_rng(settings.seed)
    rows = np.sort(rng.choice(num_items, size=min(settings.recall_sample_size, num_items), replace=False))
    queries = vectors[rows]
    return RecallSample(queries, exact_neighbors(vectors, queries, k), k)


def sample_recall(searcher, sample: RecallSample, leaves_to_search: int | None = None) -> float:
    """recall@k of `searcher` on `sample`, searching its built breadth or `leaves_to_search` leaves."""
    breadth = {} if leaves_to_search is None else {"leaves_to_search": leaves_to_search}
    approx, _ = searcher.search_batched(sample.queries, final_num_neighbors=sample.k, **breadth)
    recall = recall_at_k(approx, sample.exact)
    where = "" if leaves_to_search is None else f" searching {leaves_to_search} leaves"
    logging.info("ScaNN recall@%d on %d sampled items%s: %.4f", sample.k, len(sample.queries), where, recall)
    return recall


def measure_recall(
    searcher, embeddings: np.ndarray, settings: IndexSettings, leaves_to_search: int | None = None
) -> float:
    """recall@num_neighbors of `searcher` against exact search, on a seeded sample of the items as queries."""
    return sample_recall(searcher, recall_sample(embeddings, settings), leaves_to_search)


def tune_leaves_to_search(
    searcher, embeddings: np.ndarray, settings: IndexSettings
) -> tuple[IndexSettings, float]:
    """(settings with the leaves to search that reach min_recall, the recall measured with them).

    A tenth of the leaves suffices for well-clustered vectors, not always for learned embeddings (44k items of
    a synthetic log gave recall 0.84). Unless the user fixed num_leaves_to_search, the breadth doubles until
    the recall check passes or every leaf is searched; serving reads the chosen breadth from index.json.
    The exact neighbours are computed once, whatever the number of breadths tried.
    """
    sample = recall_sample(embeddings, settings)
    recall = sample_recall(searcher, sample)
    partitioning = resolve_partitioning(int(np.shape(embeddings)[0]), settings)
    if partitioning is None or settings.num_leaves_to_search is not None:
        return settings, recall
    leaves = partitioning.num_leaves_to_search
    while recall < settings.min_recall and leaves < partitioning.num_leaves:
        leaves = min(partitioning.num_leaves, leaves * 2)
        settings = dataclasses.replace(settings, num_leaves_to_search=leaves)
        recall = sample_recall(searcher, sample, leaves)
    return settings, recall


def embed_items(
    embed_fn: Callable[[list[str]], Any],
    item_ids: Sequence[str],
    batch_size: int = 4096,
    log_every: int = 100,
) -> np.ndarray:
    """float32 [len(item_ids), dim]: `embed_fn` applied to consecutive batches of ids, in order."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if not item_ids:
        raise ValueError("no item ids to embed; expected a non-empty vocabulary")
    num_items = len(item_ids)
    num_batches = math.ceil(num_items / batch_size)
    result: np.ndarray | None = None
    for batch_index, start in enumerate(range(0, num_items, batch_size)):
        batch = list(item_ids[start : start + batch_size])
        vectors = np.asarray(embed_fn(batch))
        if vectors.ndim != 2 or vectors.shape[0] != len(batch):
            raise ValueError(
                f"embed_fn returned shape {vectors.shape} for batch {batch_index} of {len(batch)} ids; "
                f"expected [{len(batch)}, dim]"
            )
        if result is None:
            result = np.empty((num_items, vectors.shape[1]), dtype=np.float32)
        elif vectors.shape[1] != result.shape[1]:
            raise ValueError(
                f"embed_fn returned {vectors.shape[1]} dimensions for batch {batch_index} but "
                f"{result.shape[1]} for the first batch"
            )
        result[start : start + len(batch)] = vectors
        if (batch_index + 1) % log_every == 0 or batch_index + 1 == num_batches:
            logging.info(
                "Embedded %d of %d items (%d batches)", start + len(batch), num_items, batch_index + 1
            )
    return result


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


def save_index(
    searcher,
    item_ids: Sequence[str],
    embeddings: np.ndarray,
    directory: str,
    settings: IndexSettings,
    recall: float,
) -> dict[str, Any]:
    """Writes the index directory (see the module docstring) and returns the metadata written to index.json.

    `directory` must be absent or empty. index.json goes last, atomically, so a reader that finds it finds the
    rest complete.
    """
    vectors = prepare_embeddings(embeddings, settings)
    num_items, dim = vectors.shape
    _check_item_ids(item_ids, num_items)
    if os.path.isdir(directory) and os.listdir(directory):
        raise ValueError(f"index directory {directory} is not empty; expected an absent or empty directory")
    scann_dir = os.path.join(directory, SCANN_DIR)
    os.makedirs(scann_dir, exist_ok=True)
    searcher.serialize(scann_dir)
    with open(os.path.join(directory, ITEM_IDS_FILE), "wb") as f:
        f.write(b"".join(encode_item_id(item_id) + b"\n" for item_id in item_ids))
    np.save(os.path.join(directory, EMBEDDINGS_FILE), vectors, allow_pickle=False)

    k = min(settings.num_neighbors, num_items)
    partitioning = resolve_partitioning(num_items, settings)
    metadata = {
        "format_version": FORMAT_VERSION,
        "num_items": num_items,
        "dimensions": dim,
        "distance": DISTANCE,
        "k": k,
        "recall_at_k": float(recall),
        "blessed": is_blessed(recall, settings),
        "brute_force": partitioning is None,
        "num_leaves": None if partitioning is None else partitioning.num_leaves,
        "num_leaves_to_search": None if partitioning is None else partitioning.num_leaves_to_search,
        "reorder_num_neighbors": None if partitioning is None else k * settings.reorder_multiplier,
        "settings": dataclasses.asdict(settings),
        "scann_version": importlib.metadata.version("scann"),
    }
    temporary = os.path.join(directory, f".{METADATA_FILE}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)
    os.replace(temporary, os.path.join(directory, METADATA_FILE))
    return metadata


def _load_searcher(scann_dir: str):
    """ScaNN's `load_searcher`, but with asset paths re-rooted at `scann_dir`.

    `serialize` records absolute asset paths, which break when the index directory is moved (the pusher
    renames a temporary directory into place); and `load_searcher` would unpickle `scann_docids.pkl` if one
    were there. So this reads the assets list itself and refuses the pickle.
    """
    scann = _scann()
    from google.protobuf import text_format
    from scann.scann_ops import scann_assets_pb2

    if os.path.exists(os.path.join(scann_dir, _SCANN_PICKLE)):
        raise ValueError(
            f"{scann_dir} holds {_SCANN_PICKLE}; refusing to unpickle it (save_index never writes it)"
        )
    assets_path = os.path.join(scann_dir, "scann_assets.pbtxt")
    if not os.path.isfile(assets_path):
        raise ValueError(
            f"no scann_assets.pbtxt in {scann_dir}; expected ScaNN's serialization of the searcher"
        )
    with open(assets_path, encoding="utf-8") as f:
        assets = text_format.Parse(f.read(), scann_assets_pb2.ScannAssets())
    for asset in assets.assets:
        asset.asset_path = os.path.join(os.path.abspath(scann_dir), os.path.basename(asset.asset_path))
        if not os.path.isfile(asset.asset_path):
            raise ValueError(f"ScaNN asset {asset.asset_path} listed in {assets_path} is missing")
    pybind = scann.scann_ops_pybind
    return pybind.ScannSearcher(
        pybind.scann_pybind.ScannNumpy(scann_dir, text_format.MessageToString(assets))
    )


def load_vectors(directory: str) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(item_ids, embeddings, metadata) of a `save_index` directory, checked, without importing ScaNN (and so
    TensorFlow, ~40 s): what exports and candidate-table servers need."""
    metadata_path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(metadata_path):
        raise ValueError(
            f"no {METADATA_FILE} in {directory}: not a complete index (save_index writes it last)"
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


def load_index(directory: str) -> tuple[Any, list[str], np.ndarray, dict[str, Any]]:
    """(searcher, item_ids, embeddings, metadata) of a `save_index` directory, wherever it is now."""
    item_ids, embeddings, metadata = load_vectors(directory)
    searcher = _load_searcher(os.path.join(directory, SCANN_DIR))
    return searcher, item_ids, embeddings, metadata
