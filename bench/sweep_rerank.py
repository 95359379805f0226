"""Learned reranker vs the RRF blend on a finished run's artifacts (no pipeline rerun), honestly split.

Reads what RelatedEvaluator reads: the run's latest Examples (train pairs; the rerank split the blend is
fitted on; validation and test queries), the pushed ScaNN index (Pin2Vec lists and vectors) and the
co-occurrence table. RRF's weight and constant and the reranker's weights are fitted on the rerank split
(transitions held out before each user's validation transition, never seen by the features); validation,
never fitted on, chooses the reranker's L2, how many rerank transitions per user to train on, and RRF vs
reranker; test is reported only. With --events (the run's log), the rerank queries are split by depth (1 = the
transition just before validation) by recomputing SessionExampleGen's hold-out, and checked against the split.

    python -m bench.sweep_rerank [--run-dir work/runs/ml-100k] [--events work/data/ml-100k/ratings.tsv]
        [--cache FILE.json] [--write]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import glob
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from bench.docs_section import write_section
from bench.reference_gensim import machine_description
from components.related_evaluator import blend_lib, catalogue_lib, evaluation_lib, metrics_lib, rerank_lib
from components.related_evaluator.catalogue_lib import Queries, Source
from components.session_example_gen import sessions_lib
from components.session_example_gen.event_rows import read_events
from components.session_example_gen.session_settings import SessionSettings
from formats import candidate_table, index_files

START, END = "<!-- sweep-rerank:start -->", "<!-- sweep-rerank:end -->"
# Feature groups switched off (zeroed) one at a time, to show what each contributes.
ABLATIONS = {
    "no embedding features": ("log_pin2vec_rank", "in_pin2vec", "log_reverse_pin2vec_rank", "cosine",
                              "cosine_x_log_query_popularity", "in_pin2vec_x_log_query_popularity"),
    "no direction (forward/backward counts)": ("log_forward_count", "log_backward_count"),
    "no trending (recent popularity)": ("log_recent_popularity", "recent_share"),
    "no reverse ranks": ("log_reverse_cooccurrence_rank", "log_reverse_pin2vec_rank"),
}  # fmt: skip


def latest(pattern: str) -> str:
    found = sorted(glob.glob(pattern), key=lambda p: int(os.path.basename(p.rstrip("/"))))
    if not found:
        raise FileNotFoundError(f"nothing matches {pattern}: run `make demo` first")
    return found[-1]


def rerank_depths(events_path: str, settings: SessionSettings) -> list[list[list[str]]]:
    """[depth-1 queries, depth-2 queries, ...] of the rerank split, recomputed from the log as
    SessionExampleGen does (sessions_lib's reference functions; the default EventSource columns)."""
    events = read_events(events_path, skip_bad_rows=True)  # the pipeline quarantines them
    depths: list[list[list[str]]] = [[] for _ in range(settings.rerank_transitions)]
    for examples in sessions_lib.split_log(events, settings, settings.session_gap_seconds).users.values():
        history = examples.history
        if history.test is not None:
            for depth, pair in enumerate(history.rerank):
                depths[depth].append([pair.item, pair.label])
    return depths


def load_run(run_dir: str, events: str | None, rerank_transitions: int, cache: str | None) -> dict:
    """Queries, train pairs and Pin2Vec lists (the slow, TensorFlow/ScaNN part), cached as JSON if asked."""
    if cache and os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            return json.load(f)
    from tfx.types import standard_artifacts

    from components.related_evaluator import executor
    from formats.index_searcher import RelatedItemsSearcher

    examples = standard_artifacts.Examples()
    with_rerank = glob.glob(os.path.join(run_dir, "pipeline/SessionExampleGen/examples/*/Split-rerank"))
    if not with_rerank:
        raise FileNotFoundError(f"no Examples with a rerank split under {run_dir}: run `make demo` first")
    examples.uri = max((os.path.dirname(p) for p in with_rerank), key=lambda p: int(os.path.basename(p)))
    examples.split_names = '["train", "eval", "test", "rerank"]'
    # The run's own artifacts (what its RelatedEvaluator read), pushed or not.
    # pin2vec: the next-engagement index (the cosine one in runs from before it); cosine features: `index`.
    index_dir = latest(os.path.join(run_dir, "pipeline/ScannIndexer/index/*"))
    next_indexes = os.path.join(run_dir, "pipeline/ScannIndexer/next_index/*")
    searcher = RelatedItemsSearcher(latest(next_indexes) if glob.glob(next_indexes) else index_dir, max_k=100)
    names = list(searcher.item_ids)
    train = list(executor.split_batches(examples, "train", with_timestamp=True))

    def split_pairs(split: str) -> list[list[str]]:
        batches = executor.split_batches(examples, split, with_timestamp=False)
        return [[item, label] for items, labels in batches for item, label in zip(items, labels, strict=True)]

    data = {
        "examples": examples.uri,
        "index": index_dir,
        "cooccurrence": latest(os.path.join(run_dir, "pipeline/CooccurrenceCandidates/candidates/*")),
        "train": [
            [x for column in columns for x in np.asarray(column).tolist()]
            for columns in zip(*train, strict=True)
        ],
        "rerank": split_pairs("rerank"),
        "validation": split_pairs("eval"),
        "test": split_pairs("test"),
        "pin2vec": {
            item: [[c, float(score)] for c, score in ranked]
            for item, ranked in searcher.related(names, 100).items()
        },
    }
    if events:
        settings = SessionSettings(rerank_transitions=rerank_transitions)
        depths = rerank_depths(events, settings)
        recomputed = collections.Counter(tuple(q) for depth in depths for q in depth)
        if recomputed != collections.Counter(tuple(q) for q in data["rerank"]):
            raise ValueError(
                f"{events} does not give the rerank split of {examples.uri}: another log/settings?"
            )
        data["rerank_by_depth"] = depths
    if cache:
        with open(cache + ".partial", "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(cache + ".partial", cache)  # a failed dump leaves no cache to trip over
    return json.loads(json.dumps(data))  # the same types as from the cache


def hit_rate(ranks: np.ndarray, k: int = 10) -> float:
    return metrics_lib.rank_hit_rate(ranks, k)


def mrr(ranks: np.ndarray, k: int = 10) -> float:
    return metrics_lib.rank_mrr(ranks, k)


def summary(queries: Queries, ranks: np.ndarray, buckets: np.ndarray) -> dict:
    """HR@10 / MRR@10 overall and HR@10 per popularity bucket (`buckets`: metrics_lib.item_buckets)."""
    of_query = metrics_lib.query_buckets(queries.items, buckets)
    by_bucket = {bucket: hit_rate(ranks[of_query == b]) for b, bucket in enumerate(metrics_lib.BUCKETS)}
    return {"hr": hit_rate(ranks), "mrr": mrr(ranks), **by_bucket}


def list_ranks(queries: Queries, source: Source) -> np.ndarray:
    """Target ranks within the first 10 of a source's lists (the query removed); 0 otherwise."""
    ranks = evaluation_lib.query_ranks(queries, lambda items: (source.rows(items), None))
    return np.where(ranks <= 10, ranks, 0)


def zeroed(x: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """The same features with some switched off (a constant column carries no information)."""
    x = x.copy()
    x[:, list(columns)] = 0.0
    return x


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = 2000) -> tuple[float, float]:
    """95% interval of HR@10(a) - HR@10(b) over resampled test queries."""
    hits = np.array([(x > 0) & (x <= 10) for x in (a, b)], dtype=float)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, hits.shape[1], size=(samples, hits.shape[1]))
    diff = hits[0][idx].mean(axis=1) - hits[1][idx].mean(axis=1)
    return float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))


def rrf_ranks(tuning: Queries, queries_by_split: dict, candidates: evaluation_lib.Candidates, settings):
    """The RRF blend chosen on `tuning`: (its name, ranks per split)."""
    chosen, weight, _, _ = evaluation_lib.choose_blend(tuning, candidates, settings)
    name = f"rrf_k {chosen.rrf_k:g}, weight {weight:g}"
    blend = lambda items: evaluation_lib.blend_rows(items, candidates, weight, chosen)  # noqa: E731
    ranks = {split: evaluation_lib.query_ranks(queries, blend) for split, queries in queries_by_split.items()}
    return name, {split: np.where(r <= 10, r, 0) for split, r in ranks.items()}


def without(query_pools: rerank_lib.QueryPools, columns: Sequence[int]) -> rerank_lib.QueryPools:
    pools = dataclasses.replace(query_pools.pools, x=zeroed(query_pools.pools.x, columns))
    return dataclasses.replace(query_pools, pools=pools)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="work/runs/ml-100k")
    parser.add_argument(
        "--events", help="the run's log: splits the rerank queries by depth (default settings)"
    )
    parser.add_argument(
        "--rerank-transitions",
        type=int,
        default=SessionSettings().rerank_transitions,
        help="SessionSettings.rerank_transitions of the run (with --events)",
    )
    parser.add_argument("--cache", help="JSON cache of the loaded artifacts (skips TensorFlow on reruns)")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    data = load_run(args.run_dir, args.events, args.rerank_transitions, args.cache)
    table = candidate_table.load_table(data["cooccurrence"])
    blend_settings, settings = blend_lib.BlendSettings(), rerank_lib.RerankSettings()
    cooccurrence = {item: table.candidates(item, blend_settings.top_n) for item in table.items}
    popularity = dict(zip(table.items, table.popularity.tolist(), strict=True))
    embedding = {item: [tuple(c) for c in ranked] for item, ranked in data["pin2vec"].items()}
    candidates = evaluation_lib.candidates_from_lists(
        embedding, cooccurrence, popularity, blend_settings.top_n
    )
    catalogue = candidates.catalogue
    vector_ids, vectors, _ = index_files.load_vectors(data["index"])
    pairs = rerank_lib.pairs_from_batches([data["train"]], catalogue)  # [items, labels, timestamps]
    inputs = rerank_lib.RerankInputs(
        candidates.pin2vec.ids, candidates.cooccurrence.ids, vectors,
        rerank_lib.vector_rows(catalogue, vector_ids), candidates.popularity,
        rerank_lib.interaction_stats(pairs, len(catalogue), settings.recent_share), settings.pool_per_source,
    )  # fmt: skip
    splits = {name: catalogue_lib.queries_from(data[name], catalogue) for name in ("validation", "test")}
    validation, test = splits["validation"], splits["test"]
    depth_pairs = data.get("rerank_by_depth") or [data["rerank"]]
    depths = [catalogue_lib.queries_from(depth, catalogue) for depth in depth_pairs]
    training_all = catalogue_lib.queries_from([q for depth in depth_pairs for q in depth], catalogue)
    buckets = metrics_lib.item_buckets(candidates.popularity)
    rows: list[tuple[str, dict, dict]] = []  # (name, validation summary, test summary)

    def add(name: str, ranks: dict) -> None:
        rows.append(
            (name, summary(validation, ranks["validation"], buckets), summary(test, ranks["test"], buckets))
        )

    for name, source in (
        ("pin2vec (ScaNN index)", candidates.pin2vec),
        ("cooccurrence", candidates.cooccurrence),
    ):
        add(name, {split: list_ranks(queries, source) for split, queries in splits.items()})
    cooc_test_ranks = list_ranks(test, candidates.cooccurrence)
    rrf_name, rrf = rrf_ranks(training_all, splits, candidates, blend_settings)
    add(f"RRF blend ({rrf_name}) fitted on rerank split: validation out of sample", rrf)
    in_name, in_sample = rrf_ranks(validation, splits, candidates, blend_settings)
    add(f"RRF blend ({in_name}) fitted on validation (in-sample, reference only)", in_sample)
    rrf_validation_hr = hit_rate(rrf["validation"])

    groups = {split: rerank_lib.query_pools(queries, inputs) for split, queries in splits.items()}
    depth_groups = [rerank_lib.training_groups(rerank_lib.query_pools(d, inputs)) for d in depths]
    pool_recall = {split: float((g.target_entry >= 0).mean()) for split, g in groups.items()}
    best = None  # chosen on validation: (HR@10, MRR@10, fewer transitions, stronger L2)
    for n in range(1, len(depths) + 1):
        train = [g for d in depth_groups[:n] for g in d]
        for l2 in settings.l2_grid:
            model = rerank_lib.fit_conditional_logit(train, l2, settings.newton_iterations)
            ranks = {split: rerank_lib.pool_ranks(g, model) for split, g in groups.items()}
            label = f"{n} per user" if "rerank_by_depth" in data else "all"
            add(f"reranker, rerank transitions {label} ({len(train)} training), L2 {l2:g}", ranks)
            key = (round(rows[-1][1]["hr"], 9), round(rows[-1][1]["mrr"], 9), -n, l2)
            if best is None or key > best[0]:
                best = (key, n, l2, ranks, model)
    _, best_n, best_l2, best_ranks, best_model = best
    train = [g for d in depth_groups[:best_n] for g in d]
    for name, features in ABLATIONS.items():
        columns = [rerank_lib.FEATURES.index(f) for f in features]
        off = [(zeroed(x, columns), target) for x, target in train]
        model = rerank_lib.fit_conditional_logit(off, best_l2, settings.newton_iterations)
        add(
            f"reranker ({best_n}, L2 {best_l2:g}), {name}",
            {split: rerank_lib.pool_ranks(without(g, columns), model) for split, g in groups.items()},
        )
    best_validation_hr = hit_rate(best_ranks["validation"])
    method = "reranker" if round(best_validation_hr, 9) > round(rrf_validation_hr, 9) else "RRF"
    ci_cooc = paired_bootstrap(best_ranks["test"], cooc_test_ranks)
    ci_rrf = paired_bootstrap(best_ranks["test"], rrf["test"])

    header = [
        "| source | val HR@10 | val MRR@10 | val head / torso / tail "
        "| test HR@10 | test MRR@10 | test head / torso / tail |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    lines = header + [
        f"| {name} | {v['hr']:.4f} | {v['mrr']:.4f} | {v['head']:.3f} / {v['torso']:.3f} / {v['tail']:.3f} | "
        f"{t['hr']:.4f} | {t['mrr']:.4f} | {t['head']:.3f} / {t['torso']:.3f} / {t['tail']:.3f} |"
        for name, v, t in rows
    ]
    weights = ", ".join(f"{f} {w:+.2f}" for f, w in zip(best_model.features, best_model.weights, strict=True))
    per_depth = ", ".join(str(len(d)) for d in depths)
    notes = [
        f"Rerank queries per depth (1 = just before validation): {per_depth}; with the target in the pool: "
        f"{', '.join(str(len(d)) for d in depth_groups)}.",
        f"Candidate pool (union of each source's top {settings.pool_per_source}) holds the target for "
        f"{pool_recall['validation']:.3f} of validation and {pool_recall['test']:.3f} of test queries.",
        f"Chosen on validation: {best_n} rerank transition(s) per user, L2 {best_l2:g}; {method} over RRF "
        f"(validation HR@10 {best_validation_hr:.4f} vs {rrf_validation_hr:.4f}). Test HR@10 difference, "
        f"reranker minus co-occurrence: 95% paired bootstrap interval "
        f"[{ci_cooc[0]:+.3f}, {ci_cooc[1]:+.3f}]; minus RRF blend: [{ci_rrf[0]:+.3f}, {ci_rrf[1]:+.3f}].",
        f"Standardised weights of the chosen model: {weights}.",
    ]  # fmt: skip
    print("\n".join([*lines, "", *notes]))
    if args.write:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        events = (
            f" --events {args.events} --rerank-transitions {args.rerank_transitions}" if args.events else ""
        )
        body = [
            "## sweep-rerank: learned reranker over Pin2Vec + co-occurrence candidates",
            "",
            f"`python -m bench.sweep_rerank --run-dir {args.run_dir}{events}` on {machine_description()}, "
            f"{now}; the artifacts of the run in `{args.run_dir}` ({len(training_all)} rerank, "
            f"{len(validation)} validation and {len(test)} test queries). Reranker: conditional logit "
            "(softmax over the pool) on the features of `components/related_evaluator/rerank_lib.py`. The "
            "reranker and the RRF weight are fitted on the `rerank` split (SessionExampleGen's transitions "
            "before each user's validation one, removed from training like validation and test), so every "
            "validation figure is out of sample except the reference row marked in-sample; validation "
            "chooses L2, the number of rerank transitions per user and RRF vs reranker. Nothing is chosen "
            "on test.",
            "",
            *lines,
            "",
            *[f"- {n}" for n in notes],
        ]
        write_section("\n".join(body), START, END)
        print("written to docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
