"""Learned reranking of the union of Pin2Vec and co-occurrence candidates, as pure functions.

The Pin2Vec post: both sources feed a reranker, and the embedding distance is one of its features. For a query
item the pool is the union of each source's top `pool_per_source`; each candidate gets generic features (its
rank in both lists and the query's rank in the candidate's own lists, co-occurrence counts in both directions,
embedding cosine, candidate popularity and its recent "trending" share of the training span, and query
popularity interactions). A conditional-logit model (a softmax over the pool, L2-regularised, fitted by
Newton's method) learns which candidate the user engages with next from the `rerank` transitions that
SessionExampleGen held out before each user's validation transition: neither their targets nor the validation
ones were seen by the features. The L2 strength is chosen on validation, whose figures are then out of sample,
and are what the evaluator compares with the RRF blend: no figure is read off the test split.
Nothing here knows the data set: every feature is a count, a rank or a cosine.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from components.related_evaluator import metrics_lib
from components.related_evaluator.metrics_lib import Query

Lists = Mapping[str, Sequence[tuple[str, float]]]
FORMAT_VERSION = 1

FEATURES = (
    "log_cooccurrence_rank",  # log of the candidate's rank in the query's co-occurrence list (absent: pool+1)
    "in_cooccurrence",
    "log_pin2vec_rank",
    "in_pin2vec",
    "log_reverse_cooccurrence_rank",  # the query's rank in the candidate's own co-occurrence list
    "log_reverse_pin2vec_rank",
    "log_count",  # training pairs of the two items, either order
    "log_forward_count",  # pairs where the candidate came after the query: "what users do next"
    "log_backward_count",
    "cosine",  # embedding similarity (0 where either item has no vector)
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


@dataclass(frozen=True)
class InteractionStats:
    """What the reranker knows from the training pairs beyond the candidate lists."""

    forward: Mapping[tuple[str, str], int]  # (item, later item) -> training pairs
    label_counts: Mapping[str, int]  # item -> pairs where it is the later item
    recent_label_counts: Mapping[str, int]  # the same, within the last recent_share of the time span


def interaction_stats(pairs: Sequence[tuple[str, str, int]], recent_share: float) -> InteractionStats:
    """(item, label, label timestamp) training pairs -> directed counts and recent popularity."""
    if not pairs:
        return InteractionStats({}, {}, {})
    first = min(ts for _, _, ts in pairs)
    last = max(ts for _, _, ts in pairs)
    cutoff = last - recent_share * (last - first)
    forward: Counter = Counter()
    labels: Counter = Counter()
    recent: Counter = Counter()
    for item, label, ts in pairs:
        if item == label:
            continue
        forward[(item, label)] += 1
        labels[label] += 1
        if ts >= cutoff:
            recent[label] += 1
    return InteractionStats(dict(forward), dict(labels), dict(recent))


@dataclass
class RerankInputs:
    """Everything features are computed from; ranks are indexed once, lazily."""

    embedding: Lists
    cooccurrence: Lists
    vector_ids: Sequence[str]
    vectors: np.ndarray  # [len(vector_ids), dim], unit rows (the index's own vectors)
    popularity: Mapping[str, int]
    stats: InteractionStats
    pool_per_source: int = 100
    _ranks: dict = field(default_factory=dict, repr=False)
    _vector_row: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.vector_ids):
            raise ValueError(
                f"vectors has shape {self.vectors.shape} for {len(self.vector_ids)} ids: expected a row each"
            )
        self._vector_row = {item: row for row, item in enumerate(self.vector_ids)}

    def ranks(self, source: str, item: str) -> dict[str, int]:
        """candidate -> 1-based rank in `item`'s list of `source`, within the pool depth."""
        key = (source, item)
        if key not in self._ranks:
            lists = self.embedding if source == "pin2vec" else self.cooccurrence
            ranked = (lists.get(item) or [])[: self.pool_per_source]
            self._ranks[key] = {c: r for r, (c, _) in enumerate(ranked, 1) if c != item}
        return self._ranks[key]

    def vector(self, item: str) -> np.ndarray | None:
        row = self._vector_row.get(item)
        return None if row is None else self.vectors[row]


def candidate_pool(query: str, inputs: RerankInputs) -> list[str]:
    """Co-occurrence candidates, then Pin2Vec's, each once, the query excluded."""
    pool = dict.fromkeys(inputs.ranks("cooccurrence", query))
    pool.update(dict.fromkeys(inputs.ranks("pin2vec", query)))
    return list(pool)


def pool_features(query: str, pool: Sequence[str], inputs: RerankInputs) -> np.ndarray:
    """[len(pool), len(FEATURES)] float64 features of each candidate for this query."""
    absent = inputs.pool_per_source + 1
    crank, prank = inputs.ranks("cooccurrence", query), inputs.ranks("pin2vec", query)
    forward = inputs.stats.forward
    q_vector = inputs.vector(query)
    log_query_popularity = math.log1p(inputs.popularity.get(query, 0))
    rows = []
    for c in pool:
        c_rank, p_rank = crank.get(c, absent), prank.get(c, absent)
        fwd, bwd = forward.get((query, c), 0), forward.get((c, query), 0)
        c_vector = inputs.vector(c)
        cosine = float(q_vector @ c_vector) if q_vector is not None and c_vector is not None else 0.0
        labels = inputs.stats.label_counts.get(c, 0)
        recent = inputs.stats.recent_label_counts.get(c, 0)
        log_count = math.log1p(fwd + bwd)
        in_pin2vec = float(p_rank < absent)
        rows.append(
            (
                math.log(c_rank),
                float(c_rank < absent),
                math.log(p_rank),
                in_pin2vec,
                math.log(inputs.ranks("cooccurrence", c).get(query, absent)),
                math.log(inputs.ranks("pin2vec", c).get(query, absent)),
                log_count,
                math.log1p(fwd),
                math.log1p(bwd),
                cosine,
                math.log1p(inputs.popularity.get(c, 0)),
                math.log1p(recent),
                recent / labels if labels else 0.0,
                cosine * log_query_popularity,
                in_pin2vec * log_query_popularity,
                log_count * log_query_popularity,
            )
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(pool), len(FEATURES))


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
                f"{where}: format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}"
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
    products whatever the number of training queries."""
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
    weights = np.zeros(z.shape[1])
    for _ in range(iterations):
        logits = z @ weights
        p = np.exp(logits - np.maximum.reduceat(logits, starts)[pool_of_row])
        p /= np.add.reduceat(p, starts)[pool_of_row]
        expected = np.add.reduceat(z * p[:, None], starts)  # [pools, features]
        gradient = l2 * weights + expected.sum(axis=0) - engaged
        hessian = l2 * np.eye(len(weights)) + (z * p[:, None]).T @ z - expected.T @ expected
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    return RerankModel(FEATURES, mean, scale, weights, l2)


def query_groups(queries: Sequence[Query], inputs: RerankInputs) -> list[tuple[Query, list[str], np.ndarray]]:
    """(query, pool, features) for every query (an empty pool where the query item is unknown)."""
    result = []
    for query in queries:
        pool = candidate_pool(query.item, inputs)
        result.append((query, pool, pool_features(query.item, pool, inputs)))
    return result


def training_groups(groups: Sequence[tuple[Query, list[str], np.ndarray]]) -> list[Group]:
    """Only pools that contain their target teach anything about ranking."""
    return [(x, pool.index(q.target)) for q, pool, x in groups if q.target in pool]


def ranked(pool: Sequence[str], scores: np.ndarray) -> list[tuple[str, float]]:
    """Candidates by descending score, as probabilities within the pool (positive, like other sources'
    scores); ties broken by id for determinism."""
    if not len(pool):
        return []
    p = np.exp(scores - scores.max())
    p /= p.sum()
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], pool[i]))
    return [(pool[i], float(p[i])) for i in order]


def pool_ranks(groups: Sequence[tuple[Query, list[str], np.ndarray]], model: RerankModel) -> list[int | None]:
    """The target's rank in each query's reranked pool (None: not in the pool, or no pool)."""
    return [
        metrics_lib.target_rank([c for c, _ in ranked(pool, model.score(x))], query.target) if pool else None
        for query, pool, x in groups
    ]


@dataclass(frozen=True)
class RerankChoice:
    model: RerankModel | None  # None: too few training queries
    hit_rate_at_10: float  # on validation (out of sample: the model never saw those transitions)
    mrr_at_10: float
    sweep: list[dict]
    training_queries: int
    validation_ranks: list[int | None] = field(default_factory=list)  # the chosen model's, per query


def choose_reranker(
    training: Sequence[Query], validation: Sequence[Query], inputs: RerankInputs, settings: RerankSettings
) -> RerankChoice:
    """Fits one model per L2 on the training queries and keeps the one with the best validation HR@10 (then
    MRR@10, then the stronger L2)."""
    train = training_groups(query_groups(training, inputs))
    if len(train) < settings.min_training_queries:
        return RerankChoice(None, 0.0, 0.0, [], len(train))
    validation_groups = query_groups(validation, inputs)
    sweep, fitted = [], {}
    for l2 in settings.l2_grid:
        model = fit_conditional_logit(train, l2, settings.newton_iterations)
        ranks = pool_ranks(validation_groups, model)
        fitted[l2] = (model, ranks)
        sweep.append(
            {
                "l2": l2,
                "hit_rate_at_10": metrics_lib.hit_rate(ranks, 10),
                "mrr_at_10": metrics_lib.mean_reciprocal_rank(ranks, 10),
            }
        )
    best = max(sweep, key=lambda s: (round(s["hit_rate_at_10"], 9), round(s["mrr_at_10"], 9), s["l2"]))
    model, ranks = fitted[best["l2"]]
    return RerankChoice(model, best["hit_rate_at_10"], best["mrr_at_10"], sweep, len(train), ranks)


def rerank_all(
    items: Sequence[str], inputs: RerankInputs, model: RerankModel, top_n: int
) -> dict[str, list[tuple[str, float]]]:
    """Every item's reranked pool, best first, cut to top_n."""
    result = {}
    for item in items:
        pool = candidate_pool(item, inputs)
        result[item] = ranked(pool, model.score(pool_features(item, pool, inputs)))[:top_n] if pool else []
    return result
