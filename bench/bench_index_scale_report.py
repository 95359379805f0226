"""bench-index-scale's Markdown report: one table row per method and size, the notes behind them, and its
section of docs/BENCHMARKS.md."""

from __future__ import annotations

import time

from bench.bench_index_scale_data import VectorSpec

SECTION_START = "<!-- bench-index-scale:start -->"
SECTION_END = "<!-- bench-index-scale:end -->"
GB = 1e9


def _ratio(numerator: float, denominator: float) -> str:
    if not denominator or not numerator:
        return "-"
    value = numerator / denominator
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2f}x"


def table_rows(size: dict) -> list[str]:
    """One Markdown row per method of one size; ratios against brute force and faiss of the same run."""
    by_method = {r["method"]: r for r in size["results"]}
    brute, faiss = by_method.get("brute"), by_method.get("faiss")
    rows = []
    for r in size["results"]:
        build_hwm = r.get("build_memory", {}).get("VmHWM")
        single, qps = r["single_ms"], r["batched_qps_median"]
        vs_brute = (
            f"{_ratio(brute['single_ms']['p50'], single['p50'])} / {_ratio(qps, brute['batched_qps_median'])}"
            if brute and r is not brute
            else "-"
        )
        vs_faiss = (
            f"{_ratio(faiss['single_ms']['p50'], single['p50'])} / "
            f"{_ratio(qps, faiss['batched_qps_median'])} / {_ratio(faiss['build_s'], r['build_s'])}"
            if faiss and r is not faiss and r["build_s"]
            else "-"
        )
        rows.append(
            "| "
            + " | ".join(
                [
                    f"{size['items']:,}",
                    r["label"],
                    f"{r['recall']:.3f}",
                    f"{r['build_s']:,.0f}" if r["build_s"] else "-",
                    f"{build_hwm / GB:.2f}" if build_hwm else "-",
                    f"{r['memory']['VmHWM'] / GB:.2f} / {r['sampled_peak']['RssAnon'] / GB:.2f}",
                    f"{r['index_bytes'] / GB:.2f}" if r["index_bytes"] else "-",
                    f"{single['p50']:.3f} / {single['p99']:.3f} (n={single['n']:,})",
                    f"{qps:,.0f}",
                    vs_brute,
                    vs_faiss,
                ]
            )
            + " |"
        )
    for s in size["skipped"]:
        rows.append(
            f"| {size['items']:,} | {s['method']}: skipped, estimated "
            f"{s['estimated_anon_bytes'] / GB:.1f} GB of anonymous memory is over the budget | "
            + " | ".join(["-"] * 9)
            + " |"
        )
    return rows


TABLE_HEADER = [
    "| N | method | recall@10 vs exact | build (s) | peak RSS after build (GB) | peak RSS / peak anon, "
    "whole process (GB) | index on disk (GB) | single query p50 / p99 (ms) | batched QPS (1,000 per call, "
    "median) | vs brute force: single / batched | vs faiss: single / batched / build |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def markdown_table(sizes: list[dict]) -> list[str]:
    lines = list(TABLE_HEADER)
    for size in sizes:
        lines += table_rows(size)
    return lines


def size_notes(size: dict) -> str:
    """The figures behind one size's rows: faiss's nprobe sweep and the parts of ScaNN's index directory."""
    by_method = {r["method"]: r for r in size["results"]}
    notes = [f"N={size['items']:,}:"]
    if "faiss" in by_method:
        sweep = ", ".join(f"{n} -> {r:.3f}" for n, r in by_method["faiss"]["nprobe_sweep"])
        notes.append(f"faiss recall@10 by nprobe: {sweep}.")
    for method in ("scann", "scann_pipeline_normalize"):
        if method in by_method:
            r = by_method[method]
            notes.append(
                f"{method}: ScaNN's own serialization {r['scann_bytes'] / GB:.2f} GB of the "
                f"{r['index_bytes'] / GB:.2f} GB index directory; save_index took {r['save_s']:.0f} s."
            )
    if "scann_sharded" in by_method:
        r = by_method["scann_sharded"]
        builds = ", ".join(
            f"{b['build_s']:.0f} s / {b['sampled_peak']['RssAnon'] / GB:.2f} GB" for b in r["shards"]
        )
        notes.append(
            f"scann_sharded: per shard build time / peak anon: {builds}; the query process loaded the "
            f"shards in {r['query']['load_s']:.0f} s, peak RSS {r['query']['memory']['VmHWM'] / GB:.2f} GB, "
            f"peak anon {r['query']['sampled_peak']['RssAnon'] / GB:.2f} GB."
        )
    for r in size["results"]:
        earlier = f" (earlier run, finished {r['finished_utc']} UTC)" if r.get("earlier_run") else ""
        notes.append(f"{r['method']} process wall time {r['wall_s']:.0f} s{earlier}.")
    return " ".join(notes)


def report(args, sizes: list[dict], machine: str) -> str:
    spec = VectorSpec(items=1, dim=args.dim, items_per_topic=args.items_per_topic, seed=args.seed)
    items = " ".join(str(s["items"]) for s in sizes)
    command = (
        "`make bench-index-scale` (= `.venv/bin/python -m bench.bench_index_scale --items "
        f"{items} --work work/bench/index_scale --write-docs`)"
    )
    generation = "; ".join(
        f"{s['items']:,} items: {s['topics']:,} topics, written in {s['generate_s']:.0f} s" for s in sizes
    )
    finished = [r["finished_utc"] for s in sizes for r in s["results"] if "finished_utc" in r]
    measured = f"{min(finished)} to {max(finished)}" if finished else time.strftime("%Y-%m-%d %H:%M")
    loads = [f"{s['items']:,}: {s['loadavg_end']:.1f}" for s in sizes if "loadavg_end" in s]
    load = f"1-minute load average (other people's jobs included) at the end of each size: {'; '.join(loads)}"
    load = load if loads else "shared with other people's jobs"
    skipped = [(s["items"], k) for s in sizes for k in s["skipped"]]
    budget_note = " ".join(
        f"At {items:,} items {k['method']} was not run: its estimated peak anonymous memory "
        f"{k['estimated_anon_bytes'] / GB:.1f} GB is over the {args.memory_budget_gb:g} GB budget per "
        "process (estimate = copies of the matrix x its size + a fixed part, calibrated on 400K- and "
        "1M-item builds: ScaNN's build holds its own copy plus about two more transiently; index_lib's "
        "normalize=True adds one)."
        for items, k in skipped
    )
    lines = [
        SECTION_START,
        "## Index at scale: ScaNN vs faiss vs brute force (bench/bench_index_scale.py)",
        "",
        f"Command: {command}. Machine: {machine}; {load}. Measured {measured} UTC (when each method's "
        f"process finished; one run per method and size). Data: {args.dim}-d float32, "
        f"synthetic and seeded (seed {args.seed}): a mixture of low-rank Gaussians (Gaussian topic "
        f"centres as in bench_serving, each item offset in its topic's own {spec.topic_rank}-d subspace, "
        f"+ N(0, {spec.noise}^2) noise per dimension, normalized), {args.items_per_topic:,} items per "
        f"topic ({generation}). {args.queries:,} queries (indexed items), "
        f"k={args.k}, the same for every method; each method in its own process mapping the vector file "
        "read-only.",
        "",
        *markdown_table(sizes),
        "",
        "How to read it. Recall is against the brute-force ids. Single query: one query per call, p50 over "
        "all queries (brute force: a subset, n above). Batched: all queries in one call (ScaNN "
        f"`search_batched_parallel`, faiss `search`, numpy blocks of items x all queries), median of "
        f"{args.repeats} runs (brute force: one run). Ratios: the other method's p50 / this one's, this "
        "one's QPS / the other's, and faiss's build seconds / this one's. Memory: peak RSS (VmHWM) counts "
        "the pages of the mapped vector file the process touched (page cache, reclaimable); peak anon is "
        "the sampled peak of private memory, what the process takes from everyone else. Index on disk: the "
        "index_lib.save_index directory (ScaNN's serialization + embeddings.npy + item_ids.txt); sharded: "
        "the shards' ScaNN serializations; faiss.write_index. Build time is one run (not a median).",
        "",
        *([budget_note, ""] if budget_note else []),
        *(f"- {size_notes(size)}" for size in sizes),
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"
