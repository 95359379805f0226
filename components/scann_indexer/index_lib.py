"""Building and checking the related-items index, as pure functions: a ScaNN index over item vectors, its
recall against exact search, the search breadth that reaches the recall target. No TFX here, so all of it is
unit-testable; the directory it is saved to is `formats.index_files`.

Similarity is the dot product; with `normalize` (the default) rows are scaled to unit length first, so it is
the cosine similarity that `trainer_module.export` scores with.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from absl import logging

from formats import index_files
from formats.index_files import normalize_rows, validate_embeddings

SIMILAR_SCORER = "similar"  # cosine between hidden layers: substitutes (the `pin2vec_similar` source)
NEXT_SCORER = "next"  # hidden(query) . softmax row: what the network predicts next (the `pin2vec` source)
# Exact search scores at most this many (query, item) pairs at once: 2**26 float32 = 256 MiB.
_EXACT_SEARCH_CHUNK = 2**26


@dataclasses.dataclass(frozen=True)
class IndexSettings:
    """How the index is built and when it is good enough to push."""

    num_neighbors: int = 10  # k the index is built and checked for
    num_leaves: int | None = None  # None: about sqrt(num_items)
    num_leaves_to_search: int | None = None  # None: a tenth of the leaves, at least 1
    training_sample_size: int = 250_000  # rows sampled to train the partitioner and the quantizer
    dimensions_per_block: int = 2  # asymmetric hashing: dimensions quantized together
    # ScaNN's advice for unit-norm data (the cosine index); the next-engagement index is not unit-norm, and
    # its recall check (tuning the leaves searched) is what guards it.
    anisotropic_quantization_threshold: float = 0.2
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


def is_blessed(recall: float, settings: IndexSettings) -> bool:
    """Whether an index with this recall@k may be pushed."""
    return recall >= settings.min_recall


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
    builder = index_files.scann_module().scann_ops_pybind.builder(vectors, k, index_files.DISTANCE)
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


def recall_sample(
    embeddings: np.ndarray, settings: IndexSettings, queries: np.ndarray | None = None
) -> RecallSample:
    """A seeded sample of the items, each searched with its query vector (`queries`' row, or its own indexed
    vector). With its own vector an item is its own best match; it stays in both result lists, which keeps
    the comparison fair (removing it from one side only would count a miss that is not one)."""
    vectors = prepare_embeddings(embeddings, settings)
    num_items = vectors.shape[0]
    k = min(settings.num_neighbors, num_items)
    rng = np.random.default_rng(settings.seed)
    rows = np.sort(rng.choice(num_items, size=min(settings.recall_sample_size, num_items), replace=False))
    sample = vectors[rows] if queries is None else np.asarray(queries, dtype=np.float32)[rows]
    return RecallSample(sample, exact_neighbors(vectors, sample, k), k)


def sample_recall(searcher, sample: RecallSample, leaves_to_search: int | None = None) -> float:
    """recall@k of `searcher` on `sample`, searching its built breadth or `leaves_to_search` leaves."""
    breadth = {} if leaves_to_search is None else {"leaves_to_search": leaves_to_search}
    approx, _ = searcher.search_batched(sample.queries, final_num_neighbors=sample.k, **breadth)
    recall = recall_at_k(approx, sample.exact)
    where = "" if leaves_to_search is None else f" searching {leaves_to_search} leaves"
    logging.info("ScaNN recall@%d on %d sampled items%s: %.4f", sample.k, len(sample.queries), where, recall)
    return recall


def measure_recall(
    searcher,
    embeddings: np.ndarray,
    settings: IndexSettings,
    leaves_to_search: int | None = None,
    queries: np.ndarray | None = None,
) -> float:
    """recall@num_neighbors of `searcher` against exact search, on a seeded sample of the items as queries."""
    return sample_recall(searcher, recall_sample(embeddings, settings, queries), leaves_to_search)


def tune_leaves_to_search(
    searcher, embeddings: np.ndarray, settings: IndexSettings, queries: np.ndarray | None = None
) -> tuple[IndexSettings, float]:
    """(settings with the leaves to search that reach min_recall, the recall measured with them).

    A tenth of the leaves suffices for well-clustered vectors, not always for learned embeddings (44k items of
    a synthetic log gave recall 0.84). Unless the user fixed num_leaves_to_search, the breadth doubles until
    the recall check passes or every leaf is searched; serving reads the chosen breadth from index.json.
    The exact neighbours are computed once, whatever the number of breadths tried.
    """
    sample = recall_sample(embeddings, settings, queries)
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


def save_index(
    searcher,
    item_ids: Sequence[str],
    embeddings: np.ndarray,
    directory: str,
    settings: IndexSettings,
    recall: float,
    queries: np.ndarray | None = None,
    scorer: str = SIMILAR_SCORER,
) -> dict[str, Any]:
    """`index_files.write_index` of the prepared vectors (and query vectors), with how they were indexed and
    checked and which `scorer` they implement."""
    vectors = prepare_embeddings(embeddings, settings)
    k = min(settings.num_neighbors, len(vectors))
    partitioning = resolve_partitioning(len(vectors), settings)
    build = {
        "k": k,
        "recall_at_k": float(recall),
        "blessed": is_blessed(recall, settings),
        "brute_force": partitioning is None,
        "num_leaves": None if partitioning is None else partitioning.num_leaves,
        "num_leaves_to_search": None if partitioning is None else partitioning.num_leaves_to_search,
        "reorder_num_neighbors": None if partitioning is None else k * settings.reorder_multiplier,
        "settings": dataclasses.asdict(settings),
        "scorer": scorer,
    }
    return index_files.write_index(searcher, item_ids, vectors, directory, build, queries)


def next_engagement_vectors(
    hidden: np.ndarray, softmax_rows: np.ndarray, softmax_biases: np.ndarray, with_bias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(indexed vectors, query vectors) whose dot product is the network's logit for "this item follows that
    one": softmax rows indexed, hidden layers as queries; with the bias, as one more dimension (1 on the query
    side), so that a maximum-inner-product search ranks exactly as the softmax does."""
    hidden = validate_embeddings(hidden, name="hidden")
    softmax_rows = validate_embeddings(softmax_rows, name="softmax_rows")
    softmax_biases = np.asarray(softmax_biases, dtype=np.float32).reshape(-1)
    if hidden.shape != softmax_rows.shape or softmax_biases.shape != (len(hidden),):
        raise ValueError(
            f"hidden {hidden.shape}, softmax_rows {softmax_rows.shape} and softmax_biases "
            f"{softmax_biases.shape} must describe the same items; expected [n, dim], [n, dim], [n]"
        )
    if not with_bias:
        return softmax_rows.astype(np.float32), hidden.astype(np.float32)
    ones = np.ones((len(hidden), 1), dtype=np.float32)
    return (
        np.hstack([softmax_rows, softmax_biases[:, np.newaxis]]).astype(np.float32),
        np.hstack([hidden, ones]).astype(np.float32),
    )
