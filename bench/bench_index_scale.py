"""`make bench-index-scale`: the project's ScaNN index at 1,000,000 and 10,000,000 items x 128-d, with faiss
and exact numpy brute force measured in the same run.

Per size N:
 1. seeded clustered unit vectors (bench_index_scale_data.VectorSpec: bench_serving's Gaussian topic
    centres, N/1,000 topics, each item offset in its topic's own 8-d subspace + a little noise, normalized)
    are streamed to work/bench/index_scale/n<N>/vectors.npy, one 16,384-row block at a time;
 2. each method runs in its own process (bench/bench_index_scale_methods.py) that maps the file read-only:
    numpy brute force first (it is the ground truth for recall), then ScaNN built by
    components/scann_indexer/index_lib with the pipeline's IndexSettings, then faiss IVF-Flat with as many
    lists as ScaNN has leaves and the smallest nprobe within 0.002 of ScaNN's recall. A method whose
    estimated peak anonymous memory is over --memory-budget-gb (9 GB: the machine is shared) is skipped;
    where that skips ScaNN (10M), ScaNN is built in shards instead (bench/bench_index_scale_shards.py);
 3. this process samples each child's /proc status (RSS, anonymous and file-backed) while it runs; the
    child reports its own peak RSS (VmHWM) right after the build and at the end;
 4. the files are deleted (unless --keep-files) and a Markdown table is printed; `--write-docs` puts it into
    this benchmark's section of docs/BENCHMARKS.md.
Same 1,000 queries (indexed items, as related-items queries are) for every method; k=10.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time

from bench import docs_section
from bench.bench_index_scale_data import VectorSpec, write_vectors
from bench.bench_index_scale_methods import MethodConfig, memory_status
from bench.bench_index_scale_report import GB, SECTION_END, SECTION_START, report
from bench.bench_index_scale_shards import ShardConfig, shards_needed
from bench.machine import cpu_description
from bench.progress import log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # child processes run from here

METHOD_ORDER = ("brute", "scann", "scann_sharded", "scann_pipeline_normalize", "faiss")
# Peak anonymous memory of each method process = copies x the matrix + a fixed part, measured (400K and 1M
# items, 128-d): ScaNN's build holds its own copy of the matrix plus ~2 more transiently (1M: 1.24 GB over
# the 0.3 GB TensorFlow baseline for a 0.51 GB matrix; 400K: 0.66 GB for 0.2 GB), index_lib's normalize=True
# adds one more; faiss IVF-Flat's lists hold one; brute force reads the mapped file (page cache) and keeps
# only a block of scores.
_MATRIX_COPIES = {"brute": 0, "scann": 3, "scann_pipeline_normalize": 4, "faiss": 1}
_OVERHEAD_BYTES = {"brute": 0.8e9, "scann": 0.6e9, "scann_pipeline_normalize": 0.6e9, "faiss": 0.5e9}
_ITEM_ID_BYTES = 150  # per item, in the ScaNN process: Python str, save_index's set and joined bytes


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--items-per-topic", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="batched timings: median of this many runs")
    p.add_argument(
        "--brute-single-queries",
        type=int,
        default=None,
        help="brute-force single-query latency on this many queries (default: 5e7 / N, 10 to 200)",
    )
    p.add_argument(
        "--memory-budget-gb",
        type=float,
        default=9.0,
        help="skip a method whose estimated anonymous memory exceeds this",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=METHOD_ORDER,
        default=list(METHOD_ORDER),
        help="scann_sharded runs only where scann is over the memory budget",
    )
    p.add_argument(
        "--merge-results",
        action="store_true",
        help="keep an earlier run's rows (and ground truth) for the methods not run now",
    )
    p.add_argument("--work", default=os.path.join(REPO, "work", "bench", "index_scale"))
    p.add_argument("--keep-files", action="store_true", help="keep the vectors and results under --work")
    p.add_argument("--write-docs", action="store_true", help="update this section of docs/BENCHMARKS.md")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: print (and with --write-docs write) the report of the result files under --work",
    )
    return p.parse_args(argv)


def estimated_anon_bytes(method: str, items: int, dim: int) -> float:
    """A method process's expected peak anonymous memory: its private copies of the matrix + overhead."""
    item_ids = _ITEM_ID_BYTES * items if method.startswith("scann") else 0
    return _MATRIX_COPIES[method] * items * dim * 4 + _OVERHEAD_BYTES[method] + item_ids


def brute_single_queries(items: int, requested: int | None) -> int:
    if requested is not None:
        return requested
    return int(min(200, max(10, 5e7 // items)))


class ChildMemory:
    """Polls a child's /proc status: peak RSS, anonymous and file-backed memory while it runs."""

    def __init__(self, pid: int, interval_s: float = 0.2):
        self.peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        self._pid, self._interval = pid, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.is_set():
            try:
                status = memory_status(self._pid)
            except (OSError, ValueError):
                return
            for name in self.peak:
                self.peak[name] = max(self.peak[name], status.get(name, 0))
            self._stop.wait(self._interval)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return dict(self.peak)


def run_process(module: str, config, result_path: str, name: str) -> dict:
    """`python -m module CONFIG` in its own process; its result, sampled memory peaks and wall time."""
    config_path = os.path.splitext(result_path)[0] + ".config.json"
    with open(config_path, "w") as f:
        json.dump(dataclasses.asdict(config), f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", module, config_path], cwd=REPO, env=env)
    memory = ChildMemory(child.pid)
    code = child.wait()
    sampled = memory.stop()
    if code != 0:
        raise RuntimeError(f"{name} exited with {code}; config {config_path}")
    with open(result_path) as f:
        result = json.load(f)
    result["sampled_peak"] = sampled
    result["wall_s"] = time.perf_counter() - started
    result["finished_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    return result


def run_method(config: MethodConfig) -> dict:
    return run_process("bench.bench_index_scale_methods", config, config.result_path, config.method)


def run_scann_sharded(args, items: int, vectors_path: str, size_dir: str, truth_path: str) -> dict:
    """ScaNN in the fewest shards whose builds fit the memory budget: one process per shard build, then
    one that loads them all and answers the queries. One row: summed build time, largest peaks."""
    budget = args.memory_budget_gb * GB
    shards = shards_needed(items, lambda n: estimated_anon_bytes("scann", n, args.dim) <= budget)
    work_dir = os.path.join(size_dir, "scann_sharded")
    os.makedirs(work_dir, exist_ok=True)
    common = dict(
        vectors_path=vectors_path,
        work_dir=work_dir,
        truth_path=truth_path,
        shards=shards,
        queries=args.queries,
        k=args.k,
        seed=args.seed,
        repeats=args.repeats,
    )
    builds = []
    for shard in range(shards):
        log(f"N={items:,}: scann_sharded: building shard {shard + 1} of {shards}")
        path = os.path.join(work_dir, f"build_{shard}.json")
        config = ShardConfig(role="build", result_path=path, shard=shard, **common)
        builds.append(run_process("bench.bench_index_scale_shards", config, path, f"shard {shard}"))
        log(
            f"N={items:,}: shard {shard}: build {builds[-1]['build_s']:.0f} s, peak anon "
            f"{builds[-1]['sampled_peak']['RssAnon'] / GB:.2f} GB"
        )
    path = os.path.join(work_dir, "query.json")
    query = run_process(
        "bench.bench_index_scale_shards", ShardConfig(role="query", result_path=path, **common), path, "query"
    )
    first = builds[0]
    peaks = {name: max(r["sampled_peak"][name] for r in [*builds, query]) for name in query["sampled_peak"]}
    return {
        "method": "scann_sharded",
        "label": (
            f"ScaNN in {shards} shards of ~{items // shards:,} (index_lib.build_index, pipeline "
            f"IndexSettings per shard: tree {first['num_leaves']:,} leaves, "
            f"{first['num_leaves_to_search']:,} searched, AH 2 dims/block, exact reorder of 100), each "
            "built in its own process; queries "
            "search every shard and merge"
        ),
        "build_s": sum(r["build_s"] for r in builds),
        "build_memory": {"VmHWM": max(r["build_memory"]["VmHWM"] for r in builds)},
        "index_bytes": sum(r["index_bytes"] for r in builds),
        "single_ms": query["single_ms"],
        "batched_qps": query["batched_qps"],
        "batched_qps_median": query["batched_qps_median"],
        "recall": query["recall"],
        "memory": {"VmHWM": max(r["memory"]["VmHWM"] for r in [*builds, query])},
        "sampled_peak": peaks,
        "wall_s": sum(r["wall_s"] for r in [*builds, query]),
        "finished_utc": query["finished_utc"],
        "shards": builds,
        "query": query,
    }


def plan_methods(args, items: int) -> tuple[list[str], list[dict]]:
    """(methods to run, skipped methods with their estimates) for this size: a method whose estimated
    anonymous memory is over the budget is skipped (brute force, the ground truth, never is), and
    scann_sharded runs exactly where the one-piece ScaNN build is over the budget."""
    budget = args.memory_budget_gb * GB
    run, skipped = [], []
    for method in args.methods:
        if method == "scann_sharded":
            if estimated_anon_bytes("scann", items, args.dim) > budget:
                run.append(method)
            continue
        estimate = estimated_anon_bytes(method, items, args.dim)
        if method != "brute" and estimate > budget:
            skipped.append({"method": method, "estimated_anon_bytes": estimate})
        else:
            run.append(method)
    return run, skipped


def run_size(args, items: int) -> dict:
    """All methods on one data set of `items` vectors; the data set is deleted afterwards. With
    `--merge-results`, rows of methods not run now come from this size's earlier result file, and the
    ground truth from the earlier brute-force run when brute force is not run now."""
    spec = VectorSpec(items=items, dim=args.dim, items_per_topic=args.items_per_topic, seed=args.seed)
    methods, skipped = plan_methods(args, items)
    for s in skipped:
        log(f"N={items:,}: skipping {s['method']}: ~{s['estimated_anon_bytes'] / GB:.1f} GB > budget")
    size = {"items": items, "dim": args.dim, "topics": spec.topics, "results": [], "skipped": skipped}
    earlier_path = os.path.join(args.work, f"result_n{items}.json")
    if not methods:
        return merge_earlier(dict(size, generate_s=0.0), earlier_path)
    earlier = []  # with --merge-results, faiss's recall target can be an earlier run's ScaNN
    if args.merge_results and os.path.isfile(earlier_path):
        with open(earlier_path) as f:
            earlier = json.load(f)["results"]
    size_dir = os.path.join(args.work, f"n{items}")
    saved_truth = os.path.join(args.work, f"truth_n{items}.npy")
    if "brute" not in methods and not os.path.isfile(saved_truth):
        raise ValueError(f"no {saved_truth} from an earlier run: add brute (the ground truth) to --methods")
    shutil.rmtree(size_dir, ignore_errors=True)
    os.makedirs(size_dir)
    vectors_path = os.path.join(size_dir, "vectors.npy")
    log(f"N={items:,}: writing {spec.nbytes / GB:.1f} GB of vectors ({spec.topics:,} topics)")
    started = time.perf_counter()
    write_vectors(vectors_path, spec)
    size["generate_s"] = time.perf_counter() - started
    results = size["results"]
    truth_path = os.path.join(size_dir, "truth.npy")
    if "brute" not in methods:
        shutil.copyfile(saved_truth, truth_path)
    try:
        for method in methods:
            log(f"N={items:,}: {method}")
            if method == "scann_sharded":
                results.append(run_scann_sharded(args, items, vectors_path, size_dir, truth_path))
                log_result(items, results[-1])
                continue
            scann = next((r for r in results + earlier if r["method"] in ("scann", "scann_sharded")), None)
            config = MethodConfig(
                method=method,
                vectors_path=vectors_path,
                result_path=os.path.join(size_dir, f"{method}.json"),
                work_dir=os.path.join(size_dir, method),
                truth_path=truth_path,
                queries=args.queries,
                k=args.k,
                seed=args.seed,
                repeats=args.repeats,
                brute_single_queries=brute_single_queries(items, args.brute_single_queries),
                target_recall=scann["recall"] if scann else 0.95,
            )
            results.append(run_method(config))
            log_result(items, results[-1])
            if method == "brute":
                shutil.copyfile(truth_path, saved_truth)
    finally:
        if not args.keep_files:
            shutil.rmtree(size_dir, ignore_errors=True)
    size["loadavg_end"] = os.getloadavg()[0]
    return merge_earlier(size, earlier_path) if args.merge_results else size


def merge_earlier(size: dict, earlier_path: str) -> dict:
    """`size` plus the rows of methods it did not run from the earlier result file (marked as earlier)."""
    if not os.path.isfile(earlier_path):
        if not size["results"]:
            raise ValueError(f"nothing to run for {size['items']:,} items and no earlier {earlier_path}")
        return size
    with open(earlier_path) as f:
        earlier = json.load(f)
    ran = {r["method"] for r in size["results"]}
    kept = [dict(r, earlier_run=True) for r in earlier["results"] if r["method"] not in ran]
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    merged = sorted(size["results"] + kept, key=lambda r: order.get(r["method"], len(order)))
    done = {r["method"] for r in merged}
    skipped = [s for s in earlier["skipped"] + size["skipped"] if s["method"] not in done]
    unique_skipped = list({s["method"]: s for s in skipped}.values())
    generate_s = size["generate_s"] if size["results"] else earlier["generate_s"]
    return dict(size, results=merged, skipped=unique_skipped, generate_s=generate_s)


def log_result(items: int, result: dict) -> None:
    log(
        f"N={items:,}: {result['method']}: recall {result['recall']:.4f}, build {result['build_s']:.1f} s, "
        f"p50 {result['single_ms']['p50']:.3f} ms, {result['batched_qps_median']:,.0f} QPS, "
        f"peak RSS {result['memory']['VmHWM'] / GB:.2f} GB, "
        f"peak anon {result['sampled_peak']['RssAnon'] / GB:.2f} GB, wall {result['wall_s']:.0f} s"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    sizes = []
    for items in args.items:
        path = os.path.join(args.work, f"result_n{items}.json")
        if args.report_only:
            with open(path) as f:
                sizes.append(json.load(f))
            continue
        sizes.append(run_size(args, items))
        with open(path, "w") as f:
            json.dump(sizes[-1], f, indent=1)
    text = report(args, sizes, cpu_description())
    return docs_section.report(text, SECTION_START, SECTION_END, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
