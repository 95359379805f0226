"""One method of `make bench-index-scale` in its own process: exact numpy brute force, the project's ScaNN
index (components/scann_indexer/index_lib) or faiss IVF-Flat, over a .npy of vectors mapped read-only.

Each method runs alone so that its peak RSS is its own (and TensorFlow, which `import scann` loads, is only
in the ScaNN process). Run as `python -m bench.bench_index_scale_methods CONFIG.json`; the result is JSON
at the config's `result_path`, the found neighbour ids an .npy beside it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import sys
import time

import numpy as np

from bench.bench_index_scale_data import MappedMatrix, exact_top_k, sample_rows

# faiss's nprobe is matched to ScaNN's recall within this: 20 of the 10,000 neighbours of 1,000 queries. Exact
# equality would make faiss scan many more lists to find the last few neighbours ScaNN happened to get.
RECALL_TOLERANCE = 0.002
METHODS = ("brute", "scann", "scann_pipeline_normalize", "faiss")


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """What one method process measures, and where it reads and writes."""

    method: str
    vectors_path: str
    result_path: str
    work_dir: str  # the method's index files go here (deleted afterwards)
    truth_path: str = ""  # exact ids [queries, k]; written by "brute", read by the others
    queries: int = 1_000
    k: int = 10
    seed: int = 0
    repeats: int = 3  # batched timings: the median of this many runs
    brute_single_queries: int = 50  # brute force is slow at 10M: single-query latency on this many
    faiss_training_sample: int = 250_000  # as IndexSettings.training_sample_size
    target_recall: float = 0.0  # faiss: smallest nprobe within RECALL_TOLERANCE of this recall (ScaNN's)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")

    @property
    def ids_path(self) -> str:
        return os.path.splitext(self.result_path)[0] + ".ids.npy"


def query_rows(num_items: int, config: MethodConfig) -> np.ndarray:
    """The same query rows (indexed items, as the related-items queries are) in every method's process."""
    return sample_rows(num_items, config.queries, config.seed + 1)


def memory_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS), RssAnon and RssFile of a process, in bytes, from /proc/<pid>/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[name] = int(value.split()[0]) * 1024
    return fields


def directory_bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def latency_ms(search, queries: np.ndarray) -> dict[str, float]:
    """p50 / p99 of one query at a time."""
    latencies = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        latencies.append(time.perf_counter() - started)
    ms = np.asarray(latencies) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": len(ms)}


def batched_qps(search_batch, queries: np.ndarray, repeats: int) -> tuple[np.ndarray, list[float]]:
    """(ids of the last run, queries/s of each run): all queries in one call, `repeats` times."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        ids = search_batch(queries)
        rates.append(len(queries) / (time.perf_counter() - started))
    return np.asarray(ids), rates


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    from components.scann_indexer.index_lib import recall_at_k

    return recall_at_k(ids, truth)


def run_brute(config: MethodConfig, matrix: MappedMatrix, queries: np.ndarray) -> dict:
    """Exact search, also the ground truth: all queries streamed over the items in blocks (batched), then
    a subset one at a time. The matrix stays mapped: brute force needs it resident."""
    block_rows = max(4096, 2**25 // len(queries))  # 1,000 queries: 33,554 rows, ~400 MB of scores + ids
    started = time.perf_counter()
    truth, _ = exact_top_k(matrix.blocks(block_rows, release=False), queries, config.k)
    batched_s = time.perf_counter() - started
    np.save(config.truth_path, truth)
    np.save(config.ids_path, truth)
    single = latency_ms(
        lambda q: exact_top_k(matrix.blocks(2**25, release=False), q[None, :], config.k),
        queries[: config.brute_single_queries],
    )
    return {
        "label": "numpy brute force (exact: matmul + argpartition over blocks)",
        "build_s": 0.0,
        "index_bytes": 0,
        "single_ms": single,
        "batched_qps": [len(queries) / batched_s],
        "recall": 1.0,
    }


def run_scann(config: MethodConfig, matrix: MappedMatrix, queries: np.ndarray) -> dict:
    """`index_lib.build_index` with the pipeline's IndexSettings (its defaults, scaled by it with N).

    The file holds unit vectors already, so `normalize=False` builds the same searcher without
    index_lib's normalized copy of the whole matrix; "scann_pipeline_normalize" keeps `normalize=True`, the
    pipeline's path exactly, to show what that copy costs.
    """
    import scann  # noqa: F401  (loads TensorFlow, ~40 s: imported before the build clock starts)

    from components.scann_indexer import index_lib
    from formats import index_files

    as_pipeline = config.method == "scann_pipeline_normalize"
    settings = index_lib.IndexSettings(normalize=as_pipeline)
    partitioning = index_lib.resolve_partitioning(matrix.shape[0], settings)
    started = time.perf_counter()
    searcher = index_lib.build_index(matrix.array, settings)
    build_s = time.perf_counter() - started
    build_memory = memory_status()
    matrix.release()
    truth = np.load(config.truth_path)

    def search_batch(batch):
        return searcher.search_batched_parallel(batch, final_num_neighbors=config.k)[0]

    ids, rates = batched_qps(search_batch, queries, config.repeats)
    found_recall = recall(ids, truth)
    np.save(config.ids_path, ids)
    single = latency_ms(lambda q: searcher.search(q, final_num_neighbors=config.k), queries)

    index_dir = os.path.join(config.work_dir, "index")
    shutil.rmtree(index_dir, ignore_errors=True)
    item_ids = [f"item-{i:08d}" for i in range(matrix.shape[0])]
    started = time.perf_counter()
    index_lib.save_index(searcher, item_ids, matrix.array, index_dir, settings, found_recall)
    save_s = time.perf_counter() - started
    del item_ids
    matrix.release()
    result = {
        "label": (
            f"ScaNN (index_lib.build_index, pipeline IndexSettings{' as is' if as_pipeline else ''}): "
            f"tree {partitioning.num_leaves:,} leaves, {partitioning.num_leaves_to_search:,} searched, "
            f"AH {settings.dimensions_per_block} dims/block, exact reorder of "
            f"{settings.num_neighbors * settings.reorder_multiplier}, trained on "
            f"{min(settings.training_sample_size, matrix.shape[0]):,} rows"
            + (", normalize=True (index_lib normalizes a copy)" if as_pipeline else "")
        ),
        "build_s": build_s,
        "build_memory": build_memory,
        "save_s": save_s,
        "index_bytes": directory_bytes(index_dir),
        "scann_bytes": directory_bytes(os.path.join(index_dir, index_files.SCANN_DIR)),
        "single_ms": single,
        "batched_qps": rates,
        "recall": found_recall,
    }
    shutil.rmtree(index_dir)
    return result


def nprobe_candidates(num_lists: int) -> list[int]:
    """1, 2, 4, ... up to and including `num_lists`."""
    candidates = [1]
    while candidates[-1] * 2 < num_lists:
        candidates.append(candidates[-1] * 2)
    return candidates + ([num_lists] if num_lists > 1 else [])


def run_faiss(config: MethodConfig, matrix: MappedMatrix, queries: np.ndarray) -> dict:
    """faiss IVF-Flat with as many lists as ScaNN's tree has leaves, trained on a sample of the same size
    as ScaNN's, filled block by block (the mapped file's pages handed back after each); nprobe is the
    smallest power of two whose recall is within RECALL_TOLERANCE of ScaNN's."""
    import faiss

    from components.scann_indexer import index_lib

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    num_items, dim = matrix.shape
    num_lists = index_lib.resolve_partitioning(num_items, index_lib.IndexSettings()).num_leaves
    sample = min(config.faiss_training_sample, num_items)
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, num_lists, faiss.METRIC_INNER_PRODUCT)
    training = matrix.rows(sample_rows(num_items, sample, config.seed + 2))
    matrix.release()
    index.train(training)
    del training
    for _, block in matrix.blocks(262_144):
        index.add(block)
    build_s = time.perf_counter() - started
    build_memory = memory_status()

    truth = np.load(config.truth_path)
    sweep = []
    for nprobe in nprobe_candidates(num_lists):
        index.nprobe = nprobe
        sweep.append((nprobe, recall(index.search(queries, config.k)[1], truth)))
        if sweep[-1][1] >= config.target_recall - RECALL_TOLERANCE:
            break
    ids, rates = batched_qps(lambda q: index.search(q, config.k)[1], queries, config.repeats)
    np.save(config.ids_path, ids)
    single = latency_ms(lambda q: index.search(q[None, :], config.k), queries)
    index_path = os.path.join(config.work_dir, "faiss.index")
    faiss.write_index(index, index_path)
    index_bytes = os.path.getsize(index_path)
    os.remove(index_path)
    return {
        "label": (
            f"faiss IVF-Flat {num_lists:,} lists, nprobe {index.nprobe} (smallest power of 2 within "
            f"{RECALL_TOLERANCE} of ScaNN's recall), trained on {sample:,} rows"
        ),
        "build_s": build_s,
        "build_memory": build_memory,
        "index_bytes": index_bytes,
        "single_ms": single,
        "batched_qps": rates,
        "recall": recall(ids, truth),
        "nprobe_sweep": sweep,
    }


RUNNERS = {
    "brute": run_brute,
    "scann": run_scann,
    "scann_pipeline_normalize": run_scann,
    "faiss": run_faiss,
}


def run(config: MethodConfig) -> dict:
    os.makedirs(config.work_dir, exist_ok=True)
    matrix = MappedMatrix(config.vectors_path)
    queries = matrix.rows(query_rows(matrix.shape[0], config))
    matrix.release()
    result = RUNNERS[config.method](config, matrix, queries)
    result.update(
        method=config.method,
        items=matrix.shape[0],
        dim=matrix.shape[1],
        queries=len(queries),
        batched_qps_median=statistics.median(result["batched_qps"]),
        memory=memory_status(),
    )
    with open(config.result_path, "w") as f:
        json.dump(result, f, indent=1)
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.bench_index_scale_methods CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        run(MethodConfig(**json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
