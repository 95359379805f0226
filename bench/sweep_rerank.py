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
import datetime
import glob
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from bench.docs_section import write_section
from bench.reference_gensim import machine_description
from components import candidate_table
from components.related_evaluator import blend_lib, evaluation_lib, metrics_lib, rerank_lib
from components.related_evaluator.metrics_lib import Query
from components.scann_indexer import index_lib
from components.session_example_gen import sessions_lib

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


def rerank_depths(events_path: str, settings: sessions_lib.SessionSettings) -> list[list[list[str]]]:
    """[depth-1 queries, depth-2 queries, ...] of the rerank split, recomputed from the log as
    SessionExampleGen does (sessions_lib's reference functions; the default EventSource columns)."""
    source = sessions_lib.EventSource(path=events_path)
    events = []
    for file in sessions_lib.list_input_files(events_path):
        for raw in sessions_lib.read_rows(file, source):
            parsed = sessions_lib.parse_row(raw.row, source)
            if isinstance(parsed, sessions_lib.Event):
                events.append(parsed)
    kept, _ = sessions_lib.filter_rare_items(events, settings.min_count)
    by_user: dict[str, list[sessions_lib.Event]] = {}
    for event in kept:
        by_user.setdefault(event.user, []).append(event)
    depths: list[list[list[str]]] = [[] for _ in range(settings.rerank_transitions)]
    for user_events in by_user.values():
        history = sessions_lib.hold_out_last(
            user_events,
            settings.eval_user_share,
            settings.rerank_transitions,
            settings.rerank_min_engagements,
        )
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
    from serving.index_searcher import RelatedItemsSearcher

    examples = standard_artifacts.Examples()
    with_rerank = glob.glob(os.path.join(run_dir, "pipeline/SessionExampleGen/examples/*/Split-rerank"))
    if not with_rerank:
        raise FileNotFoundError(f"no Examples with a rerank split under {run_dir}: run `make demo` first")
    examples.uri = max((os.path.dirname(p) for p in with_rerank), key=lambda p: int(os.path.basename(p)))
    examples.split_names = '["train", "eval", "test", "rerank"]'
    # The run's own artifacts (what its RelatedEvaluator read), pushed or not.
    index_dir = latest(os.path.join(run_dir, "pipeline/ScannIndexer/index/*"))
    data = {
        "examples": examples.uri,
        "index": index_dir,
        "cooccurrence": latest(os.path.join(run_dir, "pipeline/CooccurrenceCandidates/candidates/*")),
        "train": executor.read_pairs(examples, "train"),
        "rerank": [[q.item, q.target] for q in executor.read_queries(examples, "rerank")],
        "validation": [[q.item, q.target] for q in executor.read_queries(examples, "eval")],
        "test": [[q.item, q.target] for q in executor.read_queries(examples, "test")],
        "pin2vec": executor.pin2vec_lists(RelatedItemsSearcher(index_dir, max_k=100), 100),
    }
    if events:
        settings = sessions_lib.SessionSettings(rerank_transitions=rerank_transitions)
        depths = rerank_depths(events, settings)
        recomputed = collections.Counter(tuple(q) for depth in depths for q in depth)
        if recomputed != collections.Counter(tuple(q) for q in data["rerank"]):
            raise ValueError(
                f"{events} does not give the rerank split of {examples.uri}: another log/settings?"
            )
        data["rerank_by_depth"] = depths
    if cache:
        with open(cache, "w", encoding="utf-8") as f:
            json.dump(data, f)
    return json.loads(json.dumps(data))  # the same types as from the cache


def summary(queries: Sequence[Query], ranks: Sequence[int | None], buckets: dict[str, str]) -> dict:
    by_bucket = {}
    for bucket in metrics_lib.BUCKETS:
        chosen = [r for q, r in zip(queries, ranks, strict=True) if buckets.get(q.item, "tail") == bucket]
        by_bucket[bucket] = metrics_lib.hit_rate(chosen, 10)
    return {
        "hr": metrics_lib.hit_rate(ranks, 10),
        "mrr": metrics_lib.mean_reciprocal_rank(ranks, 10),
        **by_bucket,
    }


def list_ranks(queries: Sequence[Query], lists: evaluation_lib.Lists) -> list[int | None]:
    return [
        metrics_lib.target_rank([c for c, _ in (lists.get(q.item) or []) if c != q.item][:10], q.target)
        for q in queries
    ]


def zeroed(x: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """The same features with some switched off (a constant column carries no information)."""
    x = x.copy()
    x[:, list(columns)] = 0.0
    return x


def paired_bootstrap(
    a: Sequence[int | None], b: Sequence[int | None], samples: int = 2000
) -> tuple[float, float]:
    """95% interval of HR@10(a) - HR@10(b) over resampled test queries."""
    hits = np.array([[r is not None and r <= 10 for r in x] for x in (a, b)], dtype=float)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, hits.shape[1], size=(samples, hits.shape[1]))
    diff = hits[0][idx].mean(axis=1) - hits[1][idx].mean(axis=1)
    return float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))


def rrf_ranks(tuning, queries_by_split, embedding, cooccurrence, popularity, settings):
    """The RRF blend chosen on `tuning`: (its name, ranks per split)."""
    chosen, weight, _, _ = evaluation_lib.choose_blend(tuning, embedding, cooccurrence, popularity, settings)
    items = sorted({q.item for queries in queries_by_split.values() for q in queries})
    lists = evaluation_lib.blend_all(items, embedding, cooccurrence, popularity, weight, chosen)
    name = f"rrf_k {chosen.rrf_k:g}, weight {weight:g}"
    return name, {split: list_ranks(queries, lists) for split, queries in queries_by_split.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="work/runs/ml-100k")
    parser.add_argument(
        "--events", help="the run's log: splits the rerank queries by depth (default settings)"
    )
    parser.add_argument(
        "--rerank-transitions",
        type=int,
        default=sessions_lib.SessionSettings().rerank_transitions,
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
    vector_ids, vectors, _ = index_lib.load_vectors(data["index"])
    pairs = [tuple(p) for p in data["train"]]
    inputs = rerank_lib.RerankInputs(
        embedding, cooccurrence, vector_ids, vectors, popularity,
        rerank_lib.interaction_stats(pairs, settings.recent_share), settings.pool_per_source,
    )  # fmt: skip
    splits = {name: [Query(*q) for q in data[name]] for name in ("validation", "test")}
    validation, test = splits["validation"], splits["test"]
    depths = [[Query(*q) for q in depth] for depth in data.get("rerank_by_depth") or [data["rerank"]]]
    training_all = [q for depth in depths for q in depth]
    buckets = metrics_lib.popularity_buckets(popularity)
    rows: list[tuple[str, dict, dict]] = []  # (name, validation summary, test summary)

    def add(name: str, ranks: dict) -> None:
        rows.append(
            (name, summary(validation, ranks["validation"], buckets), summary(test, ranks["test"], buckets))
        )

    for name, lists in (("pin2vec (ScaNN index)", embedding), ("cooccurrence", cooccurrence)):
        add(name, {split: list_ranks(queries, lists) for split, queries in splits.items()})
    cooc_test_ranks = list_ranks(test, cooccurrence)
    rrf_name, rrf = rrf_ranks(training_all, splits, embedding, cooccurrence, popularity, blend_settings)
    add(f"RRF blend ({rrf_name}) fitted on rerank split: validation out of sample", rrf)
    in_name, in_sample = rrf_ranks(validation, splits, embedding, cooccurrence, popularity, blend_settings)
    add(f"RRF blend ({in_name}) fitted on validation (in-sample, reference only)", in_sample)
    rrf_validation_hr = metrics_lib.hit_rate(rrf["validation"], 10)

    groups = {split: rerank_lib.query_groups(queries, inputs) for split, queries in splits.items()}
    depth_groups = [rerank_lib.training_groups(rerank_lib.query_groups(d, inputs)) for d in depths]
    pool_recall = {split: np.mean([q.target in pool for q, pool, _ in g]) for split, g in groups.items()}
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
            {
                split: rerank_lib.pool_ranks([(q, pool, zeroed(x, columns)) for q, pool, x in g], model)
                for split, g in groups.items()
            },
        )
    best_validation_hr = metrics_lib.hit_rate(best_ranks["validation"], 10)
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
