"""`make bench-serving`: the related-items endpoint on 1,000,000 items x 128-d, with the baselines.

One run:
 1. seeded synthetic embeddings: 1,000 Gaussian topic centres, each item a centre plus unit noise (so items
    have real neighbourhoods, as trained embeddings do), normalized; item ids "item-0000000"...
 2. the ScaNN index built by the indexer's own code (components/scann_indexer/index_lib), saved and published
    as <work>/serving/pin2vec_similar/1 like the RelatedPusher does; recall@10 against exact search on 1,000
    items;
 3. baselines on the same vectors and queries, in-process: exact numpy (brute force) and faiss IVF-Flat
    (nprobe chosen as the smallest reaching ScaNN's recall); ScaNN in-process for the same single-query and
    batched timings;
 4. `pin2vec serve` with its defaults (the C++ gRPC transport, one process) as its own process: REST k=10
    at concurrency 1 (latency percentiles); gRPC k=10 at concurrency 64 from the C++ load generator
    (bench/grpc_load, `--grpc-seconds` per round), in rounds alternating with the same server at
    `--grpc-workers 2`, the same server on grpc.aio (`--grpc-frontend python --grpc-workers 2`, the fastest
    setting before the C++ transport) and a floor server that answers on grpc.aio with no work; then a hot
    swap: version 2 is published during sustained gRPC load (grpc.aio client, every answer
    checked) and failures and latency before/during/after the swap are counted.
Prints a Markdown report; `--write-docs` puts it into this benchmark's section of docs/BENCHMARKS.md.
Run as `python -m bench.bench_serving` from the repository root (`make bench-serving`).
The client runs on the same 2-core machine as the server, so it takes CPU from it: figures are conservative.

The parts: bench_serving_index (vectors, the published index version), bench_serving_baselines (in-process
figures), bench_serving_server (the servers as processes), bench_serving_load (the load drivers),
bench_serving_swap (latency while a version is swapped in), bench_serving_report (Markdown and the docs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from bench import docs_section
from bench.bench_serving_baselines import baselines, inprocess_predict
from bench.bench_serving_index import build_or_load_index, item_ids, synthetic_vectors
from bench.bench_serving_load import (
    REQUEST_POOL,
    grpc_rounds,
    native_load,
    predict_requests,
    read_records,
    rest_latency,
    write_requests,
)
from bench.bench_serving_report import SECTION_END, SECTION_START, report
from bench.bench_serving_server import REPO, Server, floor_server, record_response
from bench.bench_serving_swap import hot_swap, rest_during_swap
from bench.machine import cpu_description
from bench.progress import log


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--topics", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=os.path.join(REPO, "work", "bench", "serving"))
    p.add_argument("--num-leaves", type=int, default=1_000)
    p.add_argument("--leaves-to-search", type=int, default=10)
    p.add_argument("--queries", type=int, default=1_000, help="recall and in-process timing queries")
    p.add_argument("--rest-requests", type=int, default=2_000)
    p.add_argument("--grpc-seconds", type=float, default=5.0, help="per round")
    p.add_argument("--grpc-rounds", type=int, default=5, help="rounds alternating over the gRPC servers")
    p.add_argument("--grpc-concurrency", type=int, default=64)
    p.add_argument("--grpc-workers", type=int, default=1, help="pin2vec serve --grpc-workers")
    p.add_argument("--grpc-channels", type=int, default=8, help="client connections (the workers share them)")
    p.add_argument(
        "--grpc-load", default=os.path.join(REPO, "build", "grpc_load"), help="`make build/grpc_load`"
    )
    p.add_argument("--swap-seconds", type=float, default=20.0, help="sustained load around the hot swap")
    p.add_argument("--write-docs", action="store_true", help="update this section of docs/BENCHMARKS.md")
    p.add_argument("--rebuild", action="store_true", help="rebuild the index even if one is cached")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log(f"generating {args.items:,} x {args.dim} vectors")
    vectors = synthetic_vectors(args.items, args.dim, args.topics, args.seed)
    version_dir, recall, build_s, _ = build_or_load_index(args, vectors)
    # A previous run's version 2 (the hot swap) goes, so the server starts on version 1.
    for stale in ("2", "3", "4"):
        shutil.rmtree(os.path.join(os.path.dirname(version_dir), stale), ignore_errors=True)
    methods = baselines(args, vectors, version_dir, build_s)
    del vectors
    ids = item_ids(args.items)
    if not os.access(args.grpc_load, os.X_OK):
        raise SystemExit(f"no gRPC load generator at {args.grpc_load}: run `make build/grpc_load`")
    base = os.path.dirname(os.path.dirname(version_dir))
    requests_path = os.path.join(args.work, "requests.bin")
    write_requests(predict_requests(ids, REQUEST_POOL), requests_path)
    predict_cpu = inprocess_predict(base, read_records(requests_path))
    log("in-process Predict: {direct_us:.0f} us direct, {general_us:.0f} us general".format(**predict_cpu))
    log(f"starting pin2vec serve --grpc-workers {args.grpc_workers}")
    server = Server(base, os.path.join(args.work, "access.jsonl"), grpc_workers=args.grpc_workers)
    try:
        log("REST latency at concurrency 1")
        rest = rest_latency(server, ids, args.rest_requests)
        log(f"REST p50 {rest['p50']:.2f} ms, p99 {rest['p99']:.2f} ms")
        log(f"gRPC load at concurrency {args.grpc_concurrency}")
        response_path = os.path.join(args.work, "recorded_response.pb")
        record_response(server, ids, response_path)
        more = Server(base, os.path.join(args.work, "access-more.jsonl"), grpc_workers=args.grpc_workers + 1)
        python = Server(
            base, os.path.join(args.work, "access-aio.jsonl"), grpc_workers=2, grpc_frontend="python"
        )
        floor = floor_server(response_path)
        targets = {"ours": server, "more_workers": more, "python": python, "floor": floor}
        try:
            for target in targets.values():  # warm-up
                native_load(args, target, requests_path, 2.0, args.grpc_channels)
            grpc_result = grpc_rounds(args, targets, requests_path)
        finally:
            for target in (floor, python, more):
                target.stop()
        swap = hot_swap(args, server, ids, version_dir)
        log(f"hot swap: {swap['failures']} failures of {swap['requests']}, versions {swap['served_by']}")
        rest_swap = rest_during_swap(args, server, ids, version_dir, version=3)
        log(f"REST during swap: p99 {rest_swap['during'].get('p99')} ms, {rest_swap['failures']} failed")
    finally:
        code = server.stop()
        log(f"server exited with {code}")
    # The same REST swap with one more process: every process of a server loads a new version at once.
    more_workers = args.grpc_workers + 1
    log(f"REST during a swap with --grpc-workers {more_workers}")
    more = Server(base, os.path.join(args.work, "access-more.jsonl"), grpc_workers=more_workers)
    try:
        rest_swap = {
            args.grpc_workers: rest_swap,
            more_workers: rest_during_swap(args, more, ids, version_dir, version=4),
        }
    finally:
        more.stop()
    text = report(
        args, recall, build_s, methods, rest, grpc_result, swap, rest_swap, predict_cpu, cpu_description()
    )
    return docs_section.report(text, SECTION_START, SECTION_END, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
