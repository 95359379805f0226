"""ScaNN over more items than one build fits in the memory budget: the items split into contiguous shards,
each built by `index_lib.build_index` (pipeline IndexSettings, scaled by index_lib to the shard's size) in its
own process and serialized; one process loads every shard and answers a query by searching each shard and
merging their top k. How a related-items index is scaled out when one machine's build cannot hold it.

Run as `python -m bench.bench_index_scale_shards CONFIG.json` (role "build" for one shard, "query" for all).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import statistics
import sys
import time

import numpy as np

from bench.bench_index_scale_data import MappedMatrix
from bench.bench_index_scale_methods import (
    batched_qps,
    directory_bytes,
    latency_ms,
    memory_status,
    query_rows,
    recall,
)

ROLES = ("build", "query")


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    role: str
    vectors_path: str
    result_path: str
    work_dir: str  # shard_<i>/ ScaNN serializations live here
    truth_path: str
    shards: int
    shard: int = 0  # role "build": which one
    queries: int = 1_000
    k: int = 10
    seed: int = 0
    repeats: int = 3

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}; got {self.role!r}")
        if not 0 <= self.shard < self.shards:
            raise ValueError(f"shard must be in [0, {self.shards}); got {self.shard}")


def shard_bounds(num_items: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) row ranges of nearly equal size covering all items."""
    if shards < 1 or shards > num_items:
        raise ValueError(f"shards must be in [1, {num_items}]; got {shards}")
    edges = [round(i * num_items / shards) for i in range(shards + 1)]
    return list(itertools.pairwise(edges))


def merge_shard_results(per_shard: list[tuple[np.ndarray, np.ndarray]], starts: list[int], k: int):
    """Global ids [q, k] of the k largest scores over every shard's (local ids [q, k_s], scores [q, k_s])."""
    shifted = [np.asarray(i, dtype=np.int64) + s for (i, _), s in zip(per_shard, starts, strict=True)]
    ids = np.concatenate(shifted, axis=1)
    scores = np.concatenate([np.asarray(d) for _, d in per_shard], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, axis=1)


def shard_dir(config: ShardConfig, shard: int) -> str:
    return os.path.join(config.work_dir, f"shard_{shard}")


def build_shard(config: ShardConfig, matrix: MappedMatrix) -> dict:
    import scann  # noqa: F401  (loads TensorFlow, ~40 s: imported before the build clock starts)

    from components.scann_indexer import index_lib

    start, stop = shard_bounds(matrix.shape[0], config.shards)[config.shard]
    settings = index_lib.IndexSettings(normalize=False)  # the file holds unit vectors already
    partitioning = index_lib.resolve_partitioning(stop - start, settings)
    started = time.perf_counter()
    searcher = index_lib.build_index(matrix.array[start:stop], settings)
    build_s = time.perf_counter() - started
    build_memory = memory_status()
    matrix.release()
    directory = shard_dir(config, config.shard)
    os.makedirs(directory, exist_ok=True)
    searcher.serialize(directory)
    return {
        "shard": config.shard,
        "rows": [start, stop],
        "num_leaves": partitioning.num_leaves if partitioning else 0,  # 0: index_lib chose brute force
        "num_leaves_to_search": partitioning.num_leaves_to_search if partitioning else 0,
        "build_s": build_s,
        "build_memory": build_memory,
        "index_bytes": directory_bytes(directory),
    }


def query_shards(config: ShardConfig, matrix: MappedMatrix) -> dict:
    import scann

    bounds = shard_bounds(matrix.shape[0], config.shards)
    starts = [start for start, _ in bounds]
    started = time.perf_counter()
    searchers = [scann.scann_ops_pybind.load_searcher(shard_dir(config, i)) for i in range(config.shards)]
    load_s = time.perf_counter() - started
    queries = matrix.rows(query_rows(matrix.shape[0], config))
    matrix.release()
    k = config.k

    def search_batch(batch):
        per_shard = [s.search_batched_parallel(batch, final_num_neighbors=k) for s in searchers]
        return merge_shard_results(per_shard, starts, k)

    def search_one(query):
        per_shard = [s.search(query, final_num_neighbors=k) for s in searchers]
        return merge_shard_results([(i[None, :], d[None, :]) for i, d in per_shard], starts, k)

    ids, rates = batched_qps(search_batch, queries, config.repeats)
    truth = np.load(config.truth_path)
    return {
        "load_s": load_s,
        "single_ms": latency_ms(search_one, queries),
        "batched_qps": rates,
        "batched_qps_median": statistics.median(rates),
        "recall": recall(ids, truth),
        "queries": len(queries),
    }


def run(config: ShardConfig) -> dict:
    matrix = MappedMatrix(config.vectors_path)
    result = build_shard(config, matrix) if config.role == "build" else query_shards(config, matrix)
    result["memory"] = memory_status()
    with open(config.result_path, "w") as f:
        json.dump(result, f, indent=1)
    return result


def shards_needed(num_items: int, fits) -> int:
    """The fewest shards whose per-shard size `fits` (a predicate on a number of items)."""
    for shards in range(1, num_items + 1):
        if fits(math.ceil(num_items / shards)):
            return shards
    raise ValueError(f"no shard size fits, not even 1 of {num_items} items")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.bench_index_scale_shards CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        run(ShardConfig(**json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
