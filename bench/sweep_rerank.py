"""Learned reranker vs the RRF blend on a finished run's artifacts (no pipeline rerun).

Reads what RelatedEvaluator reads: the run's latest Examples (train pairs, validation and test queries), the
pushed ScaNN index (Pin2Vec lists and vectors) and co-occurrence table. Every choice (RRF weight and constant,
the reranker's L2, which blend) is made on validation; validation figures of the rerankers are out-of-fold
(5-fold inside validation), test figures come from the model refitted on all validation queries.

    python -m bench.sweep_rerank [--run-dir work/runs/ml-100k] [--cache FILE.json] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from bench.reference_gensim import machine_description
from bench.sweep_trainer import write_section
from components import candidate_table
from components.related_evaluator import blend_lib, evaluation_lib, metrics_lib, rerank_lib
from components.related_evaluator.metrics_lib import Query
from components.scann_indexer import index_lib

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


def load_run(run_dir: str, cache: str | None) -> dict:
    """Queries, train pairs and Pin2Vec lists (the slow, TensorFlow/ScaNN part), cached as JSON if asked."""
    if cache and os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            return json.load(f)
    from tfx.types import standard_artifacts

    from components.related_evaluator import executor
    from serving.index_searcher import RelatedItemsSearcher

    examples = standard_artifacts.Examples()
    with_test = glob.glob(os.path.join(run_dir, "pipeline/SessionExampleGen/examples/*/Split-test"))
    if not with_test:
        raise FileNotFoundError(f"no Examples with a test split under {run_dir}: run `make demo` first")
    examples.uri = max((os.path.dirname(p) for p in with_test), key=lambda p: int(os.path.basename(p)))
    examples.split_names = '["train", "eval", "test"]'
    index_dir = latest(os.path.join(run_dir, "serving/related/*"))
    data = {
        "examples": examples.uri,
        "index": index_dir,
        "cooccurrence": latest(os.path.join(run_dir, "serving/cooccurrence/*")),
        "train": executor.read_pairs(examples, "train"),
        "validation": [[q.item, q.target] for q in executor.read_queries(examples, "eval")],
        "test": [[q.item, q.target] for q in executor.read_queries(examples, "test")],
        "pin2vec": executor.pin2vec_lists(RelatedItemsSearcher(index_dir, max_k=100), 100),
    }
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


def zeroed(groups, columns: Sequence[int]):
    """The same groups with some features switched off (a constant column carries no information)."""
    out = []
    for query, pool, x in groups:
        x = x.copy()
        x[:, list(columns)] = 0.0
        out.append((query, pool, x))
    return out


def rerank_figures(val_groups, test_groups, l2: float, settings: rerank_lib.RerankSettings):
    """(out-of-fold validation ranks, test ranks of the model fitted on all validation)."""
    oof = rerank_lib.out_of_fold_ranks(val_groups, l2, settings)
    model = rerank_lib.fit_conditional_logit(
        rerank_lib.training_groups(val_groups), l2, settings.newton_iterations
    )
    test = [
        metrics_lib.target_rank([c for c, _ in rerank_lib.ranked(pool, model.score(x))][:10], q.target)
        if pool
        else None
        for q, pool, x in test_groups
    ]
    return oof, test, model


def paired_bootstrap(
    a: Sequence[int | None], b: Sequence[int | None], samples: int = 2000
) -> tuple[float, float]:
    """95% interval of HR@10(a) - HR@10(b) over resampled test queries."""
    hits = np.array([[r is not None and r <= 10 for r in x] for x in (a, b)], dtype=float)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, hits.shape[1], size=(samples, hits.shape[1]))
    diff = hits[0][idx].mean(axis=1) - hits[1][idx].mean(axis=1)
    return float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="work/runs/ml-100k")
    parser.add_argument("--cache", help="JSON cache of the loaded artifacts (skips TensorFlow on reruns)")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    data = load_run(args.run_dir, args.cache)
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
    validation = [Query(*q) for q in data["validation"]]
    test = [Query(*q) for q in data["test"]]
    buckets = metrics_lib.popularity_buckets(popularity)
    rows: list[tuple[str, dict, dict]] = []  # (name, validation summary, test summary)

    for name, lists in (("pin2vec (ScaNN index)", embedding), ("cooccurrence", cooccurrence)):
        rows.append((name, summary(validation, list_ranks(validation, lists), buckets),
                     summary(test, list_ranks(test, lists), buckets)))  # fmt: skip
    cooc_test_ranks = list_ranks(test, cooccurrence)
    chosen, weight, _, _ = evaluation_lib.choose_blend(
        validation, embedding, cooccurrence, popularity, blend_settings
    )
    items = sorted({q.item for q in validation + test})
    rrf = evaluation_lib.blend_all(items, embedding, cooccurrence, popularity, weight, chosen)
    rrf_test_ranks = list_ranks(test, rrf)
    rrf_cv = evaluation_lib.cross_validated_blend_ranks(
        validation, embedding, cooccurrence, popularity, blend_settings, settings.folds
    )
    rrf_test = summary(test, rrf_test_ranks, buckets)
    rrf_name = f"RRF blend (rrf_k {chosen.rrf_k:g}, weight {weight:g})"
    rrf_validation = summary(validation, list_ranks(validation, rrf), buckets)
    rows.append((f"{rrf_name}, validation in-sample", rrf_validation, rrf_test))
    rows.append(("RRF blend, validation 5-fold out-of-fold", summary(validation, rrf_cv, buckets), rrf_test))

    val_groups = rerank_lib.query_groups(validation, inputs)
    test_groups = rerank_lib.query_groups(test, inputs)
    pool_recall = {
        "validation": np.mean([q.target in pool for q, pool, _ in val_groups]),
        "test": np.mean([q.target in pool for q, pool, _ in test_groups]),
    }
    best = None
    for l2 in settings.l2_grid:
        oof, test_ranks, model = rerank_figures(val_groups, test_groups, l2, settings)
        val_summary = summary(validation, oof, buckets)
        rows.append(
            (f"reranker, L2 {l2:g} (validation out-of-fold)", val_summary, summary(test, test_ranks, buckets))
        )
        key = (round(val_summary["hr"], 9), round(val_summary["mrr"], 9), l2)
        if best is None or key > best[0]:
            best = (key, l2, test_ranks, model)
    _, best_l2, best_test_ranks, best_model = best
    for name, features in ABLATIONS.items():
        columns = [rerank_lib.FEATURES.index(f) for f in features]
        oof, test_ranks, _ = rerank_figures(
            zeroed(val_groups, columns), zeroed(test_groups, columns), best_l2, settings
        )
        rows.append(
            (
                f"reranker L2 {best_l2:g}, {name}",
                summary(validation, oof, buckets),
                summary(test, test_ranks, buckets),
            )
        )
    ci_cooc = paired_bootstrap(best_test_ranks, cooc_test_ranks)
    ci_rrf = paired_bootstrap(best_test_ranks, rrf_test_ranks)

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
    notes = [
        f"Candidate pool (union of each source's top {settings.pool_per_source}) holds the target for "
        f"{pool_recall['validation']:.3f} of validation and {pool_recall['test']:.3f} of test queries.",
        f"Chosen on validation: L2 {best_l2:g}. Test HR@10 difference, reranker minus co-occurrence: 95% "
        f"paired bootstrap interval [{ci_cooc[0]:+.3f}, {ci_cooc[1]:+.3f}]; minus RRF blend: "
        f"[{ci_rrf[0]:+.3f}, {ci_rrf[1]:+.3f}].",
        f"Standardised weights of the chosen model: {weights}.",
    ]  # fmt: skip
    print("\n".join([*lines, "", *notes]))
    if args.write:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = [
            "## sweep-rerank: learned reranker over Pin2Vec + co-occurrence candidates",
            "",
            f"`python -m bench.sweep_rerank --run-dir {args.run_dir}` on {machine_description()}, {now}; the "
            f"artifacts of the run in `{args.run_dir}` ({len(validation)} validation and {len(test)} test "
            "queries). Reranker: conditional logit (softmax over the pool) on the features of "
            "`components/related_evaluator/rerank_lib.py`, fitted on the validation transitions; validation "
            "figures of rerankers and of the cross-validated RRF row are 5-fold out-of-fold inside "
            "validation, test figures use the model refitted on all validation queries. Nothing is chosen "
            "on test.",
            "",
            *lines,
            "",
            *[f"- {n}" for n in notes],
        ]
        write_section("\n".join(body), start=START, end=END)
        print("written to docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
