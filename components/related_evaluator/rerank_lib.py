"""Learned reranking of the union of Pin2Vec, co-occurrence and (when given) board co-occurrence candidates,
as pure functions.

The Pin2Vec post: both sources feed a reranker, and the embedding distance is one of its features. For a query
item the pool is the union of each source's top `pool_per_source`; each candidate gets generic features (its
rank in every list and the query's rank in the candidate's own lists, co-occurrence counts in both directions,
embedding cosine, candidate popularity and its recent "trending" share of the training span, and query
popularity interactions). A conditional-logit model (a softmax over the pool, L2-regularised, fitted by
Newton's method) learns which candidate the user engages with next from the `rerank` transitions that
SessionExampleGen held out before each user's validation transition: neither their targets nor the validation
ones were seen by the features. The L2 strength is chosen on validation, whose figures are then out of sample,
and are what the evaluator compares with the RRF blend: no figure is read off the test split.
Nothing here knows the data set: every feature is a count, a rank or a cosine.
Kept in one module (about 500 lines): the pool features and the conditional-logit model share FEATURES and
FORMAT_VERSION (a saved model is only readable with the features it was fitted on), so they change together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from components.related_evaluator import metrics_lib
from components.related_evaluator.pool_vectors import PoolVectors, pool_vector_features

# 2: the network's next-engagement score and the embeddings' euclidean distance. 3: the board features, so a
# model fitted without them has fewer weights than FEATURES and is refused rather than misread.
FORMAT_VERSION = 3

SOURCES = ("cooccurrence", "pin2vec", "board")  # pool order: a candidate's slot is its first source's

FEATURES = (
    "log_cooccurrence_rank",  # log of the candidate's rank in the query's co-occurrence list (absent: pool+1)
    "in_cooccurrence",
    "log_pin2vec_rank",
    "in_pin2vec",
    "log_reverse_cooccurrence_rank",  # the query's rank in the candidate's own co-occurrence list
    "log_reverse_pin2vec_rank",
    # Board co-occurrence (items saved to the same collections). Without a board table these are the
    # constants log(absent), 0, log(absent) in every pool, which a conditional logit ignores (they cancel in
    # the softmax).
    "log_board_rank",
    "in_board",
    "log_reverse_board_rank",  # the query's rank in the candidate's own board list
    "log_count",  # training pairs of the two items, either order
    "log_forward_count",  # pairs where the candidate came after the query: "what users do next"
    "log_backward_count",
    "cosine",  # embedding similarity (0 where either item has no vector)
    "next_score",  # the network's logit for "candidate follows query": hidden(query) . softmax row(candidate)
    "euclidean_distance",  # between the two hidden layers, the post's reranker feature (0 without vectors)
    "log_popularity",  # the candidate's engagement count (co-occurrence degree)
    "log_recent_popularity",  # its engagements in the last `recent_share` of the training time span
    "recent_share",  # recent / all: trending items score high, fading ones low
    "cosine_x_log_query_popularity",  # per-query constants cancel in a softmax; interactions do not
    "in_pin2vec_x_log_query_popularity",
    "log_count_x_log_query_popularity",
)


@dataclass(frozen=True)
class RerankSettings:
    """Pool size, the L2 grid searched on validation, and when there is too little to learn from."""

    enabled: bool = True
    pool_per_source: int = 100
    l2_grid: tuple[float, ...] = (1.0, 10.0, 100.0)
    recent_share: float = 0.1  # the last 10% of the training time span counts as "recent"
    min_training_queries: int = 50  # rerank-split queries whose target is in the pool; fewer: no reranker
    newton_iterations: int = 50
    # Rerank-split queries the model is fitted on: a seeded uniform sample beyond this (0: all). 21 weights
    # need a few thousand pools that hold their target (about 1 query in 3 at 2M events: ~3,300 of 10,000),
    # while the fit's stacked pool matrix (~250 rows x 21 features per query) and its 3 x 50 Newton steps
    # grow with every query: at 2M events all 35,792 queries cost minutes and ~1 GB per copy of the matrix.
    max_training_queries: int = 10_000
    sample_seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "l2_grid", tuple(float(x) for x in self.l2_grid))
        if not self.l2_grid or any(not math.isfinite(x) or x <= 0 for x in self.l2_grid):
            raise ValueError(f"l2_grid={self.l2_grid!r} is invalid: expected a non-empty list of numbers > 0")
        if self.pool_per_source < 1 or self.min_training_queries < 1:
            raise ValueError(f"pool_per_source >= 1 and min_training_queries >= 1 expected; got {self}")
        if not 0.0 < self.recent_share <= 1.0:
            raise ValueError(f"recent_share={self.recent_share!r} is invalid: expected (0, 1]")
        if self.newton_iterations < 1:
            raise ValueError(f"newton_iterations={self.newton_iterations!r} is invalid: expected >= 1")
        if self.max_training_queries < 0:
            raise ValueError(f"max_training_queries={self.max_training_queries!r} is invalid: expected >= 0")


@dataclass(frozen=True)
class TrainingPairs:
    """The train split's (item, label, label timestamp) as catalogue rows. Pairs whose label lies outside the
    catalogue are dropped (it can be no candidate); `first` / `last` span every pair read."""

    items: np.ndarray  # int64 [P], -1 where the item is outside the catalogue
    labels: np.ndarray  # int64 [P], all >= 0
    timestamps: np.ndarray  # int64 [P]
    first: int | None = None  # the earliest / latest timestamp of all pairs (None: no pairs)
    last: int | None = None


def pairs_from_batches(batches: Iterable[tuple[Sequence[str], Sequence[str], Sequence[int]]], catalogue):
    """(item ids, label ids, timestamps) batches -> TrainingPairs; one batch at a time is held as strings."""
    return pairs_from_rows(
        (catalogue.rows(item_ids), catalogue.rows(label_ids), times) for item_ids, label_ids, times in batches
    )


def pairs_from_rows(batches: Iterable[tuple[np.ndarray, np.ndarray, Sequence[int]]]) -> TrainingPairs:
    """(item rows, label rows, timestamps) batches, rows already looked up in the catalogue (-1: outside it)
    -> TrainingPairs."""
    items, labels, timestamps, first, last = [], [], [], None, None
    for item_rows, label_rows, times in batches:
        times = np.asarray(times, dtype=np.int64)
        if not len(times):
            continue
        first = int(times.min()) if first is None else min(first, int(times.min()))
        last = int(times.max()) if last is None else max(last, int(times.max()))
        label_rows = np.asarray(label_rows, dtype=np.int64)
        keep = label_rows >= 0
        items.append(np.asarray(item_rows, dtype=np.int64)[keep])
        labels.append(label_rows[keep])
        timestamps.append(times[keep])
    join = lambda parts: np.concatenate(parts) if parts else np.empty(0, np.int64)  # noqa: E731
    return TrainingPairs(join(items), join(labels), join(timestamps), first, last)


@dataclass(frozen=True)
class InteractionStats:
    """What the reranker knows from the training pairs beyond the candidate lists, as arrays."""

    keys: np.ndarray  # int64, sorted unique item * num_items + later item
    counts: np.ndarray  # int64 training pairs per key
    label_counts: np.ndarray  # int64 [num_items]: pairs where the row is the later item
    recent_label_counts: np.ndarray  # the same, within the last recent_share of the time span
    num_items: int

    def pair_counts(self, items: np.ndarray, later: np.ndarray) -> np.ndarray:
        """Training pairs (item, later item) for each given pair of rows (vectorised binary search)."""
        wanted = np.asarray(items, dtype=np.int64) * self.num_items + np.asarray(later, dtype=np.int64)
        if not len(self.keys):
            return np.zeros(len(wanted), dtype=np.int64)
        position = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return np.where(self.keys[position] == wanted, self.counts[position], 0)


def interaction_stats(pairs: TrainingPairs, num_items: int, recent_share: float) -> InteractionStats:
    """Training pairs -> directed pair counts and (recent) popularity as later item; self-pairs ignored."""
    if pairs.first is None:
        empty = np.empty(0, np.int64)
        return InteractionStats(
            empty, empty, np.zeros(num_items, np.int64), np.zeros(num_items, np.int64), num_items
        )
    cutoff = pairs.last - recent_share * (pairs.last - pairs.first)
    other = pairs.items != pairs.labels
    labels = pairs.labels[other]
    label_counts = np.bincount(labels, minlength=num_items).astype(np.int64)
    recent = np.bincount(labels[pairs.timestamps[other] >= cutoff], minlength=num_items).astype(np.int64)
    known = other & (pairs.items >= 0)
    keys, counts = np.unique(pairs.items[known] * num_items + pairs.labels[known], return_counts=True)
    return InteractionStats(keys, counts.astype(np.int64), label_counts, recent, num_items)


def left_aligned(ids: np.ndarray) -> np.ndarray:
    """Candidate rows with the padding moved to the end (a no-op, without a copy, for the usual rows)."""
    valid = ids >= 0
    if not (valid[:, 1:] & ~valid[:, :-1]).any():
        return ids
    order = np.argsort(~valid, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1)


@dataclass
class RerankInputs:
    """Everything features are computed from, over catalogue rows."""

    pin2vec: np.ndarray  # int32 [N, a]: candidate rows, -1 padded
    cooccurrence: np.ndarray  # int32 [N, b]
    vectors: np.ndarray  # [V, dim], unit rows (the index's own vectors)
    vector_row: np.ndarray  # int64 [N]: each catalogue row's row in `vectors`, -1 where it has none
    popularity: np.ndarray  # int64 [N]
    stats: InteractionStats
    pool_per_source: int = 100
    hidden: np.ndarray | None = (
        None  # [V, dim]: raw hidden layers, rows as `vectors` (None: no such features)
    )
    softmax_rows: np.ndarray | None = None  # [V, dim]: the output layer's rows, rows as `vectors`
    board: np.ndarray | None = None  # int32 [N, c]: board co-occurrence candidates (None: no board table)
    _sorted: dict = field(default_factory=dict, init=False, repr=False)  # name -> SortedRows
    _vectors: PoolVectors | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.popularity)
        if self.vectors.ndim != 2 or self.vector_row.shape != (n,):
            raise ValueError(
                f"vectors has shape {self.vectors.shape} and vector_row {self.vector_row.shape}: "
                f"expected 2-D vectors and one row number per catalogue item ({n})"
            )
        for name in ("hidden", "softmax_rows"):
            array = getattr(self, name)
            if array is not None and (array.ndim != 2 or len(array) != len(self.vectors)):
                raise ValueError(
                    f"{name} has shape {array.shape}: expected one row per vector ({len(self.vectors)})"
                )
        if any(len(source) != n for source in self.sources().values()) or self.stats.num_items != n:
            raise ValueError(f"sources, popularity and stats must all cover the same {n} catalogue items")
        depth = self.pool_per_source
        self.pin2vec = left_aligned(self.pin2vec)[:, :depth]
        self.cooccurrence = left_aligned(self.cooccurrence)[:, :depth]
        if self.board is not None:
            self.board = left_aligned(self.board)[:, :depth]
        self._sorted = {name: SortedRows.of(source) for name, source in self.sources().items()}
        self._vectors = PoolVectors.of(self.vectors, self.hidden, self.softmax_rows)

    def pool_vectors(self) -> PoolVectors:
        """The embedding arrays, with the hidden layers' norms (made with the inputs)."""
        return self._vectors

    def sorted_rows(self, name: str) -> SortedRows:
        """The source's rows sorted for reverse-rank lookups (made with the inputs)."""
        return self._sorted[name]

    def sources(self) -> dict[str, np.ndarray]:
        """The given candidate sources by name, in pool order (SOURCES)."""
        given = {"cooccurrence": self.cooccurrence, "pin2vec": self.pin2vec, "board": self.board}
        return {name: given[name] for name in SOURCES if given[name] is not None}


def vector_rows(catalogue, vector_ids: Sequence[str]) -> np.ndarray:
    """catalogue row -> row in the index's vectors (-1: no vector)."""
    result = np.full(len(catalogue), -1, dtype=np.int64)
    rows = catalogue.rows(list(vector_ids))
    result[rows[rows >= 0]] = np.flatnonzero(rows >= 0)
    return result


@dataclass(frozen=True)
class Pools:
    """The candidate pools of a batch of query items, flattened: pool i is entries starts[i]:starts[i+1]."""

    items: np.ndarray  # int64 [R]: the query item rows (-1: unknown, an empty pool)
    starts: np.ndarray  # int64 [R + 1]
    candidates: np.ndarray  # int64 [M]
    x: np.ndarray  # float64 [M, len(FEATURES)]

    @property
    def owner(self) -> np.ndarray:
        """The pool (0..R-1) of each entry."""
        return np.repeat(np.arange(len(self.items)), np.diff(self.starts))


def candidate_pools(
    items: np.ndarray, inputs: RerankInputs
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Every given source's candidates in SOURCES order, each once, the query excluded, for all items at once.

    Returns (starts, candidates, rank by source name) of the flattened pools, with a rank array for every name
    in SOURCES: pool_per_source + 1 where the candidate is not in that source's list (or the source is not
    given)."""
    items = np.asarray(items, dtype=np.int64)
    absent = inputs.pool_per_source + 1
    given = inputs.sources()
    rows = [source[np.maximum(items, 0)] for source in given.values()]
    joined = np.concatenate(rows, axis=1).astype(np.int64)
    widths = [r.shape[1] for r in rows]
    rank = np.broadcast_to(np.concatenate([np.arange(1, w + 1) for w in widths]), joined.shape)
    origin = np.broadcast_to(np.repeat(np.arange(len(rows)), widths), joined.shape)  # index into `given`
    valid = (joined >= 0) & (joined != items[:, None]) & (items[:, None] >= 0)
    owner = np.repeat(np.arange(len(items), dtype=np.int64)[:, None], joined.shape[1], axis=1)[valid]
    candidate, rank, origin = joined[valid], rank[valid], origin[valid]
    if not len(candidate):
        empty = np.empty(0, np.int64)
        return np.zeros(len(items) + 1, np.int64), empty, {name: empty for name in SOURCES}
    key = owner * max(len(inputs.popularity), 1) + candidate
    order = np.argsort(key, kind="stable")  # within a key: by source, then by position
    sorted_key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_key[1:] != sorted_key[:-1]]))
    first = order[starts]  # each candidate's first slot: pool order is slot order
    by_slot = np.argsort(first, kind="stable")
    ranks = {}
    for s, name in enumerate(given):
        ranks[name] = np.minimum.reduceat(np.where(origin == s, rank, absent)[order], starts)[by_slot]
    first = first[by_slot]
    for name in SOURCES:
        ranks.setdefault(name, np.full(len(first), absent, dtype=np.int64))
    pool_starts = np.searchsorted(owner[first], np.arange(len(items) + 1))
    return pool_starts.astype(np.int64), candidate[first], {name: ranks[name] for name in SOURCES}


@dataclass(frozen=True)
class SortedRows:
    """A source's rows each sorted ascending, with each entry's 1-based rank in the original row: finding
    whether (and where) an item is in a row is then a binary search of log2(depth) gathers, not a scan of
    the whole row (the reranker asks that for every pool entry of every catalogue item)."""

    members: np.ndarray  # int32 [N, depth], ascending per row (padding -1 first)
    ranks: np.ndarray  # uint8 / int16 / int32 [N, depth]: the member's rank in the original row

    @staticmethod
    def of(source: np.ndarray, chunk: int = 65536) -> SortedRows:
        depth = source.shape[1]
        rank_type = np.uint8 if depth < 255 else np.int16 if depth < 32767 else np.int32
        members = np.empty_like(source)
        ranks = np.empty(source.shape, dtype=rank_type)
        for start in range(0, len(source), chunk):  # bounds argsort's int64 order array
            rows = source[start : start + chunk]
            order = np.argsort(rows, axis=1, kind="stable")  # equal entries keep their original order
            members[start : start + chunk] = np.take_along_axis(rows, order, axis=1)
            ranks[start : start + chunk] = order + 1
        return SortedRows(members, ranks)

    def rank_of(self, rows: np.ndarray, wanted: np.ndarray, absent: int) -> np.ndarray:
        """The 1-based rank of wanted[i] (>= 0) in the original row rows[i] (its first occurrence), `absent`
        where the row lacks it: a branch-free lower bound, the same number of steps for every entry."""
        depth = self.members.shape[1]
        flat, base = self.members.ravel(), np.asarray(rows, dtype=np.int64) * depth
        wanted = np.asarray(wanted, dtype=np.int64)
        position, width = np.zeros(len(base), dtype=np.int64), depth
        while width > 1:
            half = width // 2
            position += np.where(flat[base + position + half - 1] < wanted, half, 0)
            width -= half
        if depth:
            position += flat[base + position] < wanted
        inside = position < depth
        slot = base + np.minimum(position, max(depth - 1, 0))
        found = inside & (flat[slot] == wanted) if depth else inside
        return np.where(found, self.ranks.ravel()[slot], absent).astype(np.int64)


def _reverse_rank(sorted_rows: SortedRows, candidates: np.ndarray, query: np.ndarray, absent: int):
    """The query's 1-based rank in each candidate's own (left-aligned, pool-deep) list; `absent` if not."""
    return sorted_rows.rank_of(candidates, query, absent)


def pool_features(items: np.ndarray, inputs: RerankInputs) -> Pools:
    """The pools of `items` and the [M, len(FEATURES)] float64 features of each candidate for its query."""
    items = np.asarray(items, dtype=np.int64)
    starts, candidates, ranks = candidate_pools(items, inputs)
    c_rank, p_rank, b_rank = ranks["cooccurrence"], ranks["pin2vec"], ranks["board"]
    absent = inputs.pool_per_source + 1
    query = np.repeat(items, np.diff(starts))
    fwd = inputs.stats.pair_counts(query, candidates)
    bwd = inputs.stats.pair_counts(candidates, query)
    cosine, next_score, distance = pool_vector_features(
        starts,
        np.where(items >= 0, inputs.vector_row[np.maximum(items, 0)], -1),
        inputs.vector_row[candidates],
        inputs.pool_vectors(),
    )
    labels = inputs.stats.label_counts[candidates]
    recent = inputs.stats.recent_label_counts[candidates]
    log_count = np.log1p(fwd + bwd)
    in_pin2vec = (p_rank < absent).astype(np.float64)
    log_query_popularity = np.log1p(inputs.popularity[query])
    columns = (
        np.log(c_rank),
        (c_rank < absent).astype(np.float64),
        np.log(p_rank),
        in_pin2vec,
        np.log(_reverse_rank(inputs.sorted_rows("cooccurrence"), candidates, query, absent)),
        np.log(_reverse_rank(inputs.sorted_rows("pin2vec"), candidates, query, absent)),
        np.log(b_rank),
        (b_rank < absent).astype(np.float64),
        np.log(
            np.full(len(candidates), absent)
            if inputs.board is None
            else _reverse_rank(inputs.sorted_rows("board"), candidates, query, absent)
        ),
        log_count,
        np.log1p(fwd),
        np.log1p(bwd),
        cosine,
        next_score,
        distance,
        np.log1p(inputs.popularity[candidates]),
        np.log1p(recent),
        np.divide(recent, labels, out=np.zeros(len(labels)), where=labels > 0),
        cosine * log_query_popularity,
        in_pin2vec * log_query_popularity,
        log_count * log_query_popularity,
    )
    x = np.empty((len(candidates), len(FEATURES)), dtype=np.float64)
    for column, values in enumerate(columns):
        x[:, column] = values
    return Pools(items, starts, candidates, x)


@dataclass(frozen=True)
class RerankModel:
    """A linear score over standardised features; serialised as JSON, never pickled."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    l2: float

    def score(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "model": "conditional_logit",
                "features": list(self.features),
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "weights": self.weights.tolist(),
                "l2": self.l2,
            },
            indent=1,
        )

    @staticmethod
    def from_json(text: str, where: str = "rerank model") -> RerankModel:
        data = json.loads(text)
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{where}: format_version {data.get('format_version')!r}, expected {FORMAT_VERSION} (its "
                "features differ from this code's: run the RelatedEvaluator again to fit a new reranker)"
            )
        features = tuple(data["features"])
        if features != FEATURES:
            raise ValueError(f"{where}: features {features} differ from this code's {FEATURES}")
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
        if any(a.shape != (len(FEATURES),) or not np.isfinite(a).all() for a in arrays):
            raise ValueError(f"{where}: mean, scale and weights must be {len(FEATURES)} finite numbers each")
        return RerankModel(features, *arrays, l2=float(data["l2"]))


Group = tuple[np.ndarray, int]  # (pool features, index of the engaged candidate)


def fit_conditional_logit(groups: Sequence[Group], l2: float, iterations: int = 50) -> RerankModel:
    """Maximum-likelihood softmax over each pool (plus l2/2 |w|^2), by Newton's method: convex, a handful of
    steps, no learning rate to tune. All pools are stacked in one matrix, so a step costs a few matrix
    products whatever the number of training queries.

    Each step is damped (halved until the objective drops enough, Armijo's rule): a full Newton step
    overshoots when the pools are nearly separable and L2 is small against their number (on synthetic logs
    undamped steps ended at validation HR@10 0.001 with weights of +-60 pointing the wrong way), while a
    damped step always decreases this convex objective and near the optimum is the full step."""
    if not groups:
        raise ValueError("no training queries: need at least one pool that contains its target")
    stacked = np.vstack([x for x, _ in groups])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)
    scale[scale == 0] = 1.0
    z = (stacked - mean) / scale
    sizes = np.array([len(x) for x, _ in groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pool_of_row = np.repeat(np.arange(len(groups)), sizes)
    engaged = z[starts + np.array([target for _, target in groups])].sum(axis=0)

    def softmax_and_objective(weights: np.ndarray) -> tuple[np.ndarray, float]:
        """Each row's probability within its pool, and the penalised negative log-likelihood."""
        logits = z @ weights
        top = np.maximum.reduceat(logits, starts)
        p = np.exp(logits - top[pool_of_row])
        total = np.add.reduceat(p, starts)
        objective = 0.5 * l2 * weights @ weights + float((top + np.log(total)).sum() - engaged @ weights)
        return p / total[pool_of_row], objective

    weights = np.zeros(z.shape[1])
    p, objective = softmax_and_objective(weights)
    for _ in range(iterations):
        weighted = z * p[:, None]
        expected = np.add.reduceat(weighted, starts)  # [pools, features]
        gradient = l2 * weights + expected.sum(axis=0) - engaged
        hessian = l2 * np.eye(len(weights)) + weighted.T @ z - expected.T @ expected
        del weighted
        step = np.linalg.solve(hessian, gradient)
        decrease, t = float(gradient @ step), 1.0  # > 0: the Hessian is positive definite
        while True:
            candidate = weights - t * step
            p_candidate, candidate_objective = softmax_and_objective(candidate)
            if candidate_objective <= objective - 0.25 * t * decrease or t < 1e-10:
                break
            t *= 0.5
        weights, p, objective = candidate, p_candidate, candidate_objective
        if np.abs(t * step).max() < 1e-8:
            break
    return RerankModel(FEATURES, mean, scale, weights, l2)


def pool_ranks_of(pools: Pools, scores: np.ndarray) -> np.ndarray:
    """Each entry's 1-based rank within its pool: descending score, ties by candidate row (= id)."""
    owner = pools.owner
    order = np.lexsort((pools.candidates, -scores, owner))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - pools.starts[owner[order]] + 1
    return rank


def pool_probabilities(pools: Pools, scores: np.ndarray) -> np.ndarray:
    """Softmax of the scores within each pool (positive, like other sources' scores)."""
    filled = np.flatnonzero(np.diff(pools.starts) > 0)
    if not len(filled):
        return np.empty(0)
    nonempty = pools.starts[filled]
    dense = np.full(len(pools.items), -1, dtype=np.int64)
    dense[filled] = np.arange(len(filled))
    owner = dense[pools.owner]
    p = np.exp(scores - np.maximum.reduceat(scores, nonempty)[owner])
    return p / np.add.reduceat(p, nonempty)[owner]


@dataclass(frozen=True)
class QueryPools:
    """Pools of a query set's distinct items, and where each query's target sits in its item's pool."""

    pools: Pools
    target_entry: np.ndarray  # int64 [Q]: the entry of the target in the query's pool, -1 when absent


def query_pools(queries, inputs: RerankInputs) -> QueryPools:
    """(pools of the distinct query items, each query's target entry); unknown items have empty pools."""
    distinct, which = np.unique(queries.items, return_inverse=True)
    pools = pool_features(distinct, inputs)
    n = max(len(inputs.popularity), 1)
    keys = pools.owner.astype(np.int64) * n + pools.candidates
    order = np.argsort(keys, kind="stable")
    wanted = which.astype(np.int64) * n + np.asarray(queries.targets, dtype=np.int64)
    position = np.minimum(np.searchsorted(keys[order], wanted), max(len(keys) - 1, 0))
    found = (
        (keys[order][position] == wanted) & (np.asarray(queries.targets) >= 0)
        if len(keys)
        else np.zeros(len(wanted), dtype=bool)
    )
    return QueryPools(pools, np.where(found, order[position] if len(keys) else 0, -1))


def training_groups(query_pools_: QueryPools) -> list[Group]:
    """Only pools that contain their target teach anything about ranking: (pool features, target index)."""
    pools, entries = query_pools_.pools, query_pools_.target_entry
    owner = pools.owner
    return [
        (pools.x[pools.starts[owner[e]] : pools.starts[owner[e] + 1]], int(e - pools.starts[owner[e]]))
        for e in entries[entries >= 0]
    ]


def pool_ranks(query_pools_: QueryPools, model: RerankModel) -> np.ndarray:
    """The target's rank in each query's reranked pool (0: not in the pool, or no pool)."""
    if not len(query_pools_.pools.candidates):
        return np.zeros(len(query_pools_.target_entry), dtype=np.int64)
    rank = pool_ranks_of(query_pools_.pools, model.score(query_pools_.pools.x))
    entries = query_pools_.target_entry
    return np.where(entries >= 0, rank[np.maximum(entries, 0)], 0)


def sample_queries(count: int, most: int, seed: int) -> np.ndarray:
    """Indices of `count` queries: all (0..count-1) up to `most` (0: no bound), else a seeded uniform sample
    of `most`, in their original order."""
    if most == 0 or count <= most:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=most, replace=False))


@dataclass(frozen=True)
class RerankChoice:
    model: RerankModel | None  # None: too few training queries
    hit_rate_at_10: float  # on validation (out of sample: the model never saw those transitions)
    mrr_at_10: float
    sweep: list[dict]
    training_queries: int
    validation_ranks: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # 0: a miss


def choose_reranker(training, validation, inputs: RerankInputs, settings: RerankSettings) -> RerankChoice:
    """Fits one model per L2 on the training queries (catalogue_lib.Queries; a sample of
    settings.max_training_queries of them beyond that) and keeps the one with the best validation HR@10
    (then MRR@10, then the stronger L2)."""
    training = training.take(
        sample_queries(len(training), settings.max_training_queries, settings.sample_seed)
    )
    train = training_groups(query_pools(training, inputs))
    if len(train) < settings.min_training_queries:
        return RerankChoice(None, 0.0, 0.0, [], len(train))
    validation_pools = query_pools(validation, inputs)
    sweep, fitted = [], {}
    for l2 in settings.l2_grid:
        model = fit_conditional_logit(train, l2, settings.newton_iterations)
        ranks = pool_ranks(validation_pools, model)
        fitted[l2] = (model, ranks)
        sweep.append(
            {
                "l2": l2,
                "hit_rate_at_10": metrics_lib.rank_hit_rate(ranks, 10),
                "mrr_at_10": metrics_lib.rank_mrr(ranks, 10),
            }
        )
    best = max(sweep, key=lambda s: (round(s["hit_rate_at_10"], 9), round(s["mrr_at_10"], 9), s["l2"]))
    model, ranks = fitted[best["l2"]]
    return RerankChoice(model, best["hit_rate_at_10"], best["mrr_at_10"], sweep, len(train), ranks)


def rerank_rows(items: np.ndarray, inputs: RerankInputs, model: RerankModel, top_n: int) -> tuple:
    """The reranked pools of some items, best first, cut to top_n: (candidates int32 [R, top_n], -1 padded;
    float64 probabilities within the pool)."""
    pools = pool_features(items, inputs)
    ids = np.full((len(pools.items), top_n), -1, dtype=np.int32)
    probabilities = np.zeros((len(pools.items), top_n), dtype=np.float64)
    if not len(pools.candidates):
        return ids, probabilities
    scores = model.score(pools.x)
    rank = pool_ranks_of(pools, scores)
    p = pool_probabilities(pools, scores)
    keep = rank <= top_n
    owner = pools.owner
    ids[owner[keep], rank[keep] - 1] = pools.candidates[keep]
    probabilities[owner[keep], rank[keep] - 1] = p[keep]
    return ids, probabilities
