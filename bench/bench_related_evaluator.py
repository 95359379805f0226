"""RelatedEvaluator's work at catalogue scale on synthetic inputs, without TFX: time per phase and peak RSS.

Builds, in memory and seeded, what the executor loads (two candidate sources as padded [N, top_n] rows, index
vectors, engagement counts, held-out queries and the train split's pairs as id strings) and runs the lib
functions the executor calls, phase by phase: strings -> rows for the pairs, interaction counts, the RRF grid
on the rerank queries, the reranker's fit and L2 choice, RRF and reranker over the whole catalogue (both, to
time the worst case), metrics for every split and source, and the blend table written to disk.

    python -m bench.bench_related_evaluator [--items 100000] [--top-n 100] [--pairs 2000000] [--queries 20000]
        [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import psutil

from bench.docs_section import write_section
from components.related_evaluator import blend_lib, catalogue_lib, evaluation_lib, rerank_lib
from formats import candidate_table

START, END = "<!-- bench-related-evaluator:start -->", "<!-- bench-related-evaluator:end -->"
PAIR_BATCH = 8192  # the executor's PARSE_BATCH


@dataclasses.dataclass(frozen=True)
class Sizes:
    items: int
    top_n: int
    pairs: int
    queries: int
    dim: int = 128  # the Trainer's default embedding_dim
    seed: int = 0


def item_id(rows: np.ndarray) -> list[str]:
    return [f"item{r:07d}" for r in rows.tolist()]


def synthetic_rows(rng: np.random.Generator, n: int, top_n: int) -> np.ndarray:
    """Each item's candidates: distinct items a little after it, nearest first, lists of varied length."""
    offsets = np.cumsum(rng.integers(1, 4, size=(n, top_n), dtype=np.int32), axis=1, dtype=np.int32)
    rows = (np.arange(n, dtype=np.int32)[:, None] + offsets) % n
    lengths = np.minimum(rng.geometric(0.02, size=n), top_n)
    rows[np.arange(top_n)[None, :] >= lengths[:, None]] = -1
    return rows


def near_targets(rng: np.random.Generator, items: np.ndarray, n: int) -> np.ndarray:
    """The next item: usually a little after the query (so often in its pools), sometimes anywhere."""
    targets = (items + rng.geometric(0.05, size=len(items))) % n
    anywhere = rng.random(len(items)) < 0.2
    targets[anywhere] = rng.integers(0, n, size=int(anywhere.sum()))
    return targets


def build(sizes: Sizes):
    rng = np.random.default_rng(sizes.seed)
    n = sizes.items
    catalogue = catalogue_lib.catalogue_of(item_id(np.arange(n)))
    popularity = np.minimum(rng.zipf(1.6, size=n), 10**6).astype(np.int64)
    counted = np.ones(n, dtype=bool)
    sources = []
    for _ in range(2):
        ids = synthetic_rows(rng, n, sizes.top_n)
        scores = np.where(ids >= 0, 1.0 / (1.0 + np.arange(sizes.top_n, dtype=np.float32)), 0.0)
        sources.append(catalogue_lib.Source(ids, scores.astype(np.float32)))
    candidates = evaluation_lib.Candidates(catalogue, sources[0], sources[1], popularity, counted)
    hidden = rng.normal(size=(n, sizes.dim)).astype(np.float32)  # what the next-engagement index queries with
    softmax_rows = rng.normal(size=(n, sizes.dim)).astype(np.float32)  # what it indexes
    vectors = hidden / np.linalg.norm(hidden, axis=1, keepdims=True)  # the cosine index's unit rows
    weights = popularity / popularity.sum()
    splits = {}
    for name in ("training", "validation", "test"):
        items = rng.choice(n, size=sizes.queries, p=weights).astype(np.int64)
        splits[name] = catalogue_lib.Queries(items, near_targets(rng, items, n).astype(np.int64))
    return candidates, (vectors, hidden, softmax_rows), splits


def pair_batches(sizes: Sizes):
    """The train split as the executor reads it: batches of id strings with timestamps."""
    rng = np.random.default_rng(sizes.seed + 1)
    for start in range(0, sizes.pairs, PAIR_BATCH):
        count = min(PAIR_BATCH, sizes.pairs - start)
        items = rng.integers(0, sizes.items, size=count)
        labels = near_targets(rng, items, sizes.items)
        yield item_id(items), item_id(labels), rng.integers(0, 10**6, size=count)


def rss_gb() -> float:
    return psutil.Process().memory_info().rss / 2**30


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run(sizes: Sizes) -> list[tuple[str, float, float]]:
    """(phase, seconds, RSS GiB after it) for each phase."""
    phases: list[tuple[str, float, float]] = []
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases.append((name, now - clock, rss_gb()))
        print(f"{name}: {now - clock:.1f} s, RSS {rss_gb():.2f} GiB", flush=True)
        clock = now

    candidates, (vectors, hidden, softmax_rows), splits = build(sizes)
    phase("synthetic inputs (not the evaluator's work)")
    catalogue, n = candidates.catalogue, sizes.items
    pairs = rerank_lib.pairs_from_batches(pair_batches(sizes), catalogue)
    phase(f"train pairs: id strings -> rows ({sizes.pairs:,} pairs, incl. making the strings)")
    rerank_settings = rerank_lib.RerankSettings()
    stats = rerank_lib.interaction_stats(pairs, n, rerank_settings.recent_share)
    del pairs
    inputs = rerank_lib.RerankInputs(
        candidates.pin2vec.ids,
        candidates.cooccurrence.ids,
        vectors,
        np.arange(n, dtype=np.int64),
        candidates.popularity,
        stats,
        rerank_settings.pool_per_source,
        hidden,
        softmax_rows,
    )
    phase("interaction counts (sorted pair keys, bincounts)")
    settings = blend_lib.BlendSettings(top_n=sizes.top_n)
    settings, weight, _, _ = evaluation_lib.choose_blend(splits["training"], candidates, settings)
    phase(f"RRF grid on the rerank queries ({len(settings.weights) * len(settings.rrf_ks)} settings)")
    choice = rerank_lib.choose_reranker(splits["training"], splits["validation"], inputs, rerank_settings)
    phase(
        f"reranker: pools, features, fit x{len(rerank_settings.l2_grid)} L2 "
        f"({choice.training_queries} groups)"
    )
    rrf = evaluation_lib.blend_all(candidates, weight, settings)
    phase("RRF blend over the whole catalogue")
    reranked = evaluation_lib.rerank_all(candidates, inputs, choice.model, settings.top_n)
    phase("reranker over the whole catalogue")
    sources = {"pin2vec": candidates.pin2vec, "cooccurrence": candidates.cooccurrence, "blend": reranked}
    metrics = evaluation_lib.evaluate_all(
        {k: splits[k] for k in ("validation", "test")}, sources, candidates.popularity, n
    )
    phase("metrics: 2 splits x 3 sources")
    with tempfile.TemporaryDirectory() as directory:
        table = candidate_table.from_arrays(
            catalogue.ids.tolist(), reranked.ids, reranked.scores, candidates.popularity, {"source": "blend"}
        )
        candidate_table.save_table(table, os.path.join(directory, "blend"))
        del table
        phase("blend table from arrays, saved")
    test = metrics["test"]
    print(
        "test HR@10: "
        + ", ".join(f"{name} {m['hit_rate']['10']:.4f}" for name, m in test.items())
        + f"; RRF weight {weight}, rrf_k {settings.rrf_k}; "
        + f"reranker validation HR@10 {choice.hit_rate_at_10:.4f}"
    )
    del rrf
    return phases


def table_lines(sizes: Sizes, phases: Sequence[tuple[str, float, float]], peak: float) -> list[str]:
    work = sum(seconds for name, seconds, _ in phases[1:])
    lines = [
        f"**{sizes.items:,} items, top_n {sizes.top_n}, {sizes.pairs:,} train pairs, {sizes.queries:,} "
        f"queries per split**: evaluator work {work:.0f} s, peak RSS {peak:.2f} GiB (incl. the inputs)",
        "",
        "| phase | seconds | RSS after (GiB) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {seconds:.1f} | {rss:.2f} |" for name, seconds, rss in phases]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=2_000_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="add the table to docs/BENCHMARKS.md")
    parser.add_argument("--append-to", help="a file of earlier runs' tables to write together with this one")
    args = parser.parse_args(argv)
    sizes = Sizes(args.items, args.top_n, args.pairs, args.queries, seed=args.seed)
    phases = run(sizes)
    lines = table_lines(sizes, phases, peak_rss_gb())
    print("\n".join(lines))
    if args.append_to:
        with open(args.append_to, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n\n")
    if args.write:
        earlier = ""
        if args.append_to and os.path.exists(args.append_to):
            with open(args.append_to, encoding="utf-8") as f:
                earlier = f.read()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = [
            "## bench-related-evaluator: the RelatedEvaluator's work on arrays, up to 1M items",
            "",
            f"`make bench-related-evaluator` (`python -m bench.bench_related_evaluator --items N --top-n "
            f"{sizes.top_n} --pairs P --queries {sizes.queries}`), {now}, on the shared 2-core, 24 GB "
            "development machine (other work running). Synthetic, seeded inputs built in memory; the lib "
            "functions the executor calls, without TFX and without the ScaNN search (in the pipeline "
            "that is `related_arrays` in chunks of 4096). Sources are padded int32 [N, top_n] rows over one "
            "sorted catalogue; RRF and the reranker run over the whole catalogue in chunks (both timed: the "
            "pipeline runs one). Before this rework (Python lists of (id, score) per item) the evaluator "
            "took 294 s at 1M events / 45k items and 6 GB at 2M events (see Cost curves); it would not "
            "have fit 12 GB at 1M items.",
            "",
            earlier.strip() if earlier else "\n".join(lines),
        ]
        write_section("\n".join(body), START, END)
        print("written to docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
