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
The client runs on the same 2-core machine as the server, so it takes CPU from it: figures are conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION_START = "<!-- bench_serving:start -->"
SECTION_END = "<!-- bench_serving:end -->"


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
    p.add_argument("--floor-server", default=None, help=argparse.SUPPRESS)  # internal: run the floor server
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


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def synthetic_vectors(items: int, dim: int, topics: int, seed: int) -> np.ndarray:
    from components.scann_indexer.index_lib import normalize_rows

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dim), dtype=np.float32)
    vectors = centres[rng.integers(topics, size=items)]
    vectors += rng.standard_normal((items, dim), dtype=np.float32)
    return normalize_rows(vectors)


def item_ids(items: int) -> list[str]:
    return [f"item-{i:07d}" for i in range(items)]


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    ms = np.asarray(latencies_s) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


# -- index and in-process baselines ----------------------------------------------------------------------


def build_or_load_index(args, vectors):
    """(index version dir, recall, build seconds, settings); cached under --work keyed by the settings."""
    from components.scann_indexer import index_lib
    from formats import index_files, serving_layout

    settings = index_lib.IndexSettings(
        num_leaves=args.num_leaves,
        num_leaves_to_search=args.leaves_to_search,
        training_sample_size=100_000,
        recall_sample_size=args.queries,
        seed=args.seed,
    )
    key = json.dumps(
        {
            "items": args.items,
            "dim": args.dim,
            "topics": args.topics,
            "seed": args.seed,
            "index": index_lib.settings_to_json(settings),
        },
        sort_keys=True,
    )
    base = os.path.join(args.work, "serving")
    version_dir = os.path.join(base, serving_layout.PIN2VEC_SIMILAR_MODEL, "1")
    key_file = os.path.join(args.work, "index_key.json")
    cached = ""
    if os.path.isfile(key_file):
        with open(key_file) as f:
            cached = f.read()
    if not args.rebuild and cached == key:
        with open(os.path.join(version_dir, index_files.METADATA_FILE)) as f:
            metadata = json.load(f)
        log(f"reusing the index in {version_dir}")
        return version_dir, metadata["recall_at_k"], metadata.get("bench_build_seconds"), settings
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    log(f"building the ScaNN index over {vectors.shape}")
    started = time.perf_counter()
    searcher = index_lib.build_index(vectors, settings)
    build_s = time.perf_counter() - started
    recall = index_lib.measure_recall(searcher, vectors, settings)
    staging = os.path.join(args.work, "staging")
    index_lib.save_index(searcher, item_ids(args.items), vectors, staging, settings, recall)
    with open(os.path.join(staging, index_files.METADATA_FILE)) as f:
        metadata = json.load(f)
    metadata["bench_build_seconds"] = build_s
    with open(os.path.join(staging, index_files.METADATA_FILE), "w") as f:
        json.dump(metadata, f)
    serving_layout.publish_directory(staging, os.path.join(base, serving_layout.PIN2VEC_SIMILAR_MODEL), 1)
    shutil.rmtree(staging)
    with open(key_file, "w") as f:
        f.write(key)
    return version_dir, recall, build_s, settings


def time_single(search, queries, repeats=1) -> dict[str, float]:
    latencies = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        latencies.append(time.perf_counter() - started)
    return percentiles(latencies)


def time_batched(search_batch, queries, batch=64) -> float:
    started = time.perf_counter()
    for start in range(0, len(queries), batch):
        search_batch(queries[start : start + batch])
    return len(queries) / (time.perf_counter() - started)


def baselines(args, vectors, version_dir) -> list[dict]:
    import faiss

    from components.scann_indexer import index_lib
    from formats import index_files

    rng = np.random.default_rng(args.seed + 1)
    rows = rng.choice(len(vectors), size=args.queries, replace=False)
    queries = np.ascontiguousarray(vectors[rows])
    single = queries[: min(200, len(queries))]
    log("exact neighbours (numpy) for recall")
    exact = index_lib.exact_neighbors(vectors, queries, 10)
    results = []

    def numpy_search(batch):
        scores = batch @ vectors.T
        top = np.argpartition(-scores, 9, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)

    log("numpy brute force")
    results.append(
        {
            "method": "numpy brute force (exact)",
            "recall": 1.0,
            "single": time_single(lambda q: numpy_search(q[None, :]), single[:50]),
            "batched_qps": time_batched(numpy_search, queries[:256]),
            "build_s": 0.0,
        }
    )

    _, _, _, metadata = index_files.load_index(version_dir)
    searcher, _, _, _ = index_files.load_index(version_dir)
    log("ScaNN in-process")
    approx, _ = searcher.search_batched(queries, final_num_neighbors=10)
    results.append(
        {
            "method": (
                f"ScaNN tree {metadata['num_leaves']} leaves, {metadata['num_leaves_to_search']} searched, "
                f"AH + exact reorder of {metadata['reorder_num_neighbors']}"
            ),
            "recall": index_lib.recall_at_k(approx, exact),
            "single": time_single(lambda q: searcher.search(q, final_num_neighbors=10), single),
            "batched_qps": time_batched(
                lambda b: searcher.search_batched(b, final_num_neighbors=10), queries
            ),
            "build_s": metadata.get("bench_build_seconds"),
        }
    )

    log("faiss IVF-Flat")
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(args.dim)
    ivf = faiss.IndexIVFFlat(quantizer, args.dim, args.num_leaves, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors[rng.choice(len(vectors), size=min(100_000, len(vectors)), replace=False)])
    ivf.add(vectors)
    build_s = time.perf_counter() - started
    target = results[-1]["recall"]
    for nprobe in (1, 2, 4, 6, 8, 10, 15, 20, 30, 50):
        ivf.nprobe = nprobe
        _, found = ivf.search(queries, 10)
        recall = index_lib.recall_at_k(found, exact)
        if recall >= min(target, 0.95):
            break
    results.append(
        {
            "method": f"faiss IVF-Flat {args.num_leaves} lists, nprobe {nprobe} "
            f"({faiss.omp_get_max_threads()} threads)",
            "recall": recall,
            "single": time_single(lambda q: ivf.search(q[None, :], 10), single),
            "batched_qps": time_batched(lambda b: ivf.search(b, 10), queries),
            "build_s": build_s,
        }
    )
    return results


def inprocess_predict(base: str, requests: list[bytes], passes: int = 3) -> dict[str, float]:
    """The gRPC servicer's Predict called in this process (no gRPC; access log off) on the load generator's
    requests: as sent, which the servable answers straight from their TensorProtos, and with an output_filter
    naming every output, which sends the same request down the general path (decode to arrays, check,
    submit, encode). CPU microseconds per request, median of `passes`."""
    from tensorflow_serving.apis import predict_pb2

    from formats import serving_layout
    from serving.grpc_server import PredictionServicer
    from serving.model_registry import ModelRegistry
    from serving.predict import RequestLimits
    from serving.related_model import RelatedLoader

    class Context:
        def time_remaining(self):
            return None

        def peer(self):
            return "in-process"

    direct = [predict_pb2.PredictRequest.FromString(request) for request in requests]
    general = [predict_pb2.PredictRequest.FromString(request) for request in requests]
    for request in general:
        request.output_filter.extend(["related_ids", "scores", "distances", "in_vocabulary", "source"])
    # `related`, the name clients call, answering from the index as `pin2vec serve` would.
    similar = serving_layout.PIN2VEC_SIMILAR_MODEL
    registry = ModelRegistry(
        base,
        [RelatedLoader(similar)],
        keep_versions=1,
        aliases={serving_layout.DEFAULT_MODEL: lambda: similar},
    )
    registry.start(3600.0)
    servicer, context = PredictionServicer(registry, RequestLimits()), Context()

    async def answer_all(batch):
        return [await servicer.Predict(request, context) for request in batch]

    try:
        timings: dict[str, list[float]] = {"direct_us": [], "general_us": []}
        for _ in range(passes):
            for label, batch in (("direct_us", direct), ("general_us", general)):
                started = time.process_time()
                answers = asyncio.run(answer_all(batch))
                timings[label].append((time.process_time() - started) / len(batch) * 1e6)
                if any(len(a.outputs["related_ids"].string_val) != 10 for a in answers):
                    raise RuntimeError(f"an in-process answer ({label}) without 10 related ids")
    finally:
        registry.stop()
    return {label: float(np.median(values)) for label, values in timings.items()}


# -- the server ------------------------------------------------------------------------------------------


class Server:
    """`pin2vec serve` (or, with `command`, the floor server) as a child process; reads its ready line."""

    def __init__(
        self,
        base: str,
        access_log: str,
        command: list[str] | None = None,
        grpc_workers: int = 1,
        grpc_frontend: str = "native",
    ):
        command = command or [
            sys.executable, "-m", "pipeline.cli", "serve", "--model-base", base, "--rest-port", "0",
            "--grpc-port", "0", "--access-log", access_log, "--keep-versions", "1",
            "--grpc-workers", str(grpc_workers), "--grpc-frontend", grpc_frontend,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("pin2vec serve exited before it was ready")
        ready = json.loads(line)
        self.rest_port, self.grpc_port = ready["rest_port"], ready["grpc_port"]
        self.grpc_pids = ready.get("grpc_pids", [self.process.pid])  # the processes answering gRPC

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)


def run_floor_server(response_path: str) -> None:
    """The gRPC floor: PredictionService on grpc.aio answering every Predict with a fixed response (one
    recorded from pin2vec serve), doing no work, on the event loop pin2vec serve uses by default. The same
    client against it shows what gRPC in Python costs on this machine."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from serving.server import ServerSettings, run_loop

    with open(response_path, "rb") as f:
        response = predict_pb2.PredictResponse.FromString(f.read())

    class Floor(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):
            return response

    async def main():
        server = grpc.aio.server()
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Floor(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(json.dumps({"event": "ready", "rest_port": None, "grpc_port": port}), flush=True)
        await server.wait_for_termination()

    run_loop(main(), ServerSettings(model_base="").event_loop)


def record_response(server: Server, ids, path: str) -> None:
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from serving.tensors import array_to_proto

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "related"
        request.inputs["item_ids"].CopyFrom(array_to_proto(np.array([ids[0].encode()], dtype=object)))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    with open(path, "wb") as f:
        f.write(response.SerializeToString())


def _cpu_seconds(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def write_requests(requests: list[bytes], path: str) -> None:
    """The load generator's input: [uint32 little-endian length][bytes] records."""
    with open(path, "wb") as f:
        for request in requests:
            f.write(struct.pack("<I", len(request)) + request)


def read_records(path: str) -> list[bytes]:
    records, offset = [], 0
    with open(path, "rb") as f:
        data = f.read()
    while offset < len(data):
        (size,) = struct.unpack_from("<I", data, offset)
        records.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return records


def native_load(args, server: Server, requests_path: str, seconds: float, channels: int) -> dict:
    """One closed-loop round from the C++ load generator: every status checked, the first answers parsed
    (an answer without k=10 related ids counts as failed)."""
    from tensorflow_serving.apis import predict_pb2

    samples = requests_path + ".answers"
    command = [
        args.grpc_load, "--target", f"127.0.0.1:{server.grpc_port}", "--requests", requests_path,
        "--concurrency", str(args.grpc_concurrency), "--seconds", str(seconds), "--channels", str(channels),
        "--samples", samples,
    ]  # fmt: skip
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    answers = [predict_pb2.PredictResponse.FromString(record) for record in read_records(samples)]
    bad = [a for a in answers if len(a.outputs["related_ids"].string_val) != 10]
    result["checked"] = len(answers)
    result["failed"] += len(bad)
    result["errors"] += [f"answer without 10 related ids: {str(a)[:200]}" for a in bad[:3]]
    return result


def _cpu_seconds_by_pid(pids: list[int]) -> dict[int, float]:
    import psutil

    return {pid: _cpu_seconds(psutil.Process(pid)) for pid in pids}


def grpc_rounds(args, targets: dict[str, Server], requests_path: str) -> dict:
    """Rounds alternating over `targets` (label -> server), the same client and requests for each; medians.

    Besides QPS (which other jobs on the machine move a lot), each round records the server processes' CPU
    seconds per answered request, all threads included (gRPC's own threads too), and each process's share.
    """
    load_before = os.getloadavg()[0]
    results: dict[str, list[dict]] = {label: [] for label in targets}
    for round_ in range(args.grpc_rounds):
        for label, server in targets.items():
            before = _cpu_seconds_by_pid(server.grpc_pids)
            result = native_load(args, server, requests_path, args.grpc_seconds, args.grpc_channels)
            after = _cpu_seconds_by_pid(server.grpc_pids)
            answered = max(result["answered"], 1)
            used = [after[pid] - before[pid] for pid in server.grpc_pids]
            result["cpu_us"] = sum(used) / answered * 1e6
            result["cpu_share"] = [u / max(sum(used), 1e-9) for u in used]
            result["client_cpu_us"] = result["cpu_s"] / answered * 1e6
            results[label].append(result)
        log(
            f"round {round_ + 1}: "
            + "; ".join(
                f"{label} {r[-1]['qps']:,.0f} QPS ({r[-1]['cpu_us']:.0f} us CPU/req, client "
                f"{r[-1]['client_cpu_us']:.0f})"
                for label, r in results.items()
            )
        )

    def median_of(rounds):
        qps = [r["qps"] for r in rounds]
        middle = rounds[qps.index(sorted(qps)[len(qps) // 2])]
        return {
            "qps": float(np.median(qps)),
            "all_qps": qps,
            "cpu_us": float(np.median([r["cpu_us"] for r in rounds])),
            "all_cpu_us": [r["cpu_us"] for r in rounds],
            "cpu_share": middle["cpu_share"],
            "client_cpu_us": float(np.median([r["client_cpu_us"] for r in rounds])),
            "latency": {"p50": middle["p50_ms"], "p99": middle["p99_ms"], "max": middle["max_ms"]},
            "failures": sum(r["failed"] for r in rounds),
            "checked": sum(r["checked"] for r in rounds),
            "errors": [e for r in rounds for e in r["errors"]][:5],
        }

    summary = {label: median_of(rounds) for label, rounds in results.items()}
    return {**summary, "load": (load_before, os.getloadavg()[0])}


def rest_latency(server: Server, ids: list[str], requests: int) -> dict[str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    rng = np.random.default_rng(7)
    latencies = []
    failures = 0
    for i in range(requests + 200):
        body = json.dumps({"instances": [{"item_ids": ids[rng.integers(len(ids))], "k": 10}]})
        started = time.perf_counter()
        connection.request("POST", "/v1/models/related:predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or len(json.loads(payload)["predictions"][0]["related_ids"]) != 10:
            failures += 1
        if i >= 200:  # the first 200 warm up
            latencies.append(elapsed)
    connection.close()
    return {**percentiles(latencies), "requests": requests, "failures": failures}


PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
REQUEST_POOL = 4096  # distinct pre-serialized requests the callers cycle through


def predict_requests(ids, count: int, seed: int = 11) -> list[bytes]:
    """`count` serialized PredictRequests for `related`, k=10, one random id each: built once, up front, so
    the load generator spends its CPU on gRPC and not on building the same kind of message again."""
    from tensorflow_serving.apis import predict_pb2

    from serving.tensors import array_to_proto

    k = array_to_proto(np.array(10, dtype=np.int32))
    rng = np.random.default_rng(seed)
    requests = []
    for row in rng.integers(len(ids), size=count):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "related"
        request.inputs["item_ids"].CopyFrom(array_to_proto(np.array([ids[row].encode()], dtype=object)))
        request.inputs["k"].CopyFrom(k)
        requests.append(request.SerializeToString())
    return requests


async def grpc_load(
    server: Server, ids, concurrency: int, seconds: float, during=None, channels: int = 1
) -> dict:
    """Closed-loop load: `concurrency` callers, each one request at a time, spread over `channels`
    connections (so every gRPC worker process gets some). `during` runs alongside.

    Real PredictRequests over a real HTTP/2 channel to PredictionService/Predict, as the stock stub sends
    them; the stub's per-call serializing is done once up front (`predict_requests`), and the call is the
    same unary-unary method without serializers. Every answer is parsed as a PredictResponse and checked:
    an OK status and k=10 related ids, else it counts as failed.
    """
    import grpc
    from tensorflow_serving.apis import predict_pb2

    # A local subchannel pool per channel: one connection each, not one shared by all.
    options = [("grpc.use_local_subchannel_pool", 1)]
    opened = [
        grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options) for _ in range(channels)
    ]
    methods = [channel.unary_unary(PREDICT_METHOD) for channel in opened]  # bytes in, bytes out
    parse = predict_pb2.PredictResponse.FromString
    pool = predict_requests(ids, REQUEST_POOL)
    records: list[tuple[float, float, int]] = []  # (finished at, latency, version or -1 on failure)
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    async def caller(first: int):
        turn = first
        predict = methods[first % channels]
        while time.perf_counter() < stop_at:
            payload = pool[turn % REQUEST_POOL]
            turn += concurrency
            started = time.perf_counter()
            try:
                response = parse(await predict(payload, timeout=10))
                version = response.model_spec.version.value
                if len(response.outputs["related_ids"].string_val) != 10:
                    errors.append(f"answer without 10 related ids: {str(response)[:200]}")
                    version = -1
            except grpc.aio.AioRpcError as error:
                errors.append(f"{error.code()}: {error.details()}")
                version = -1
            now = time.perf_counter()
            records.append((now, now - started, version))

    started = time.perf_counter()
    tasks = [asyncio.create_task(caller(i)) for i in range(concurrency)]
    extra = await during() if during else None
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    for channel in opened:
        await channel.close()
    ok = [r for r in records if r[2] >= 0]
    return {
        "records": records,
        "errors": errors,
        "elapsed": elapsed,
        "qps": len(ok) / elapsed,
        "latency": percentiles([r[1] for r in ok]) if ok else {},
        "extra": extra,
    }


def hot_swap(args, server: Server, ids, version_dir: str) -> dict:
    from formats import serving_layout

    base = os.path.dirname(version_dir)

    async def publish_during_load():
        await asyncio.sleep(args.swap_seconds / 3)
        swap_started = time.perf_counter()
        log("publishing version 2 under load")
        await asyncio.get_running_loop().run_in_executor(
            None, serving_layout.publish_directory, version_dir, base, 2
        )
        published = time.perf_counter()
        return {"swap_started": swap_started, "published": published}

    cpu_before = _cpu_seconds_by_pid(server.grpc_pids)
    result = asyncio.run(
        grpc_load(server, ids, 16, args.swap_seconds, publish_during_load, channels=args.grpc_channels)
    )
    cpu_after = _cpu_seconds_by_pid(server.grpc_pids)
    records = result["records"]
    published = result["extra"]["published"]
    first_v2 = min((r[0] for r in records if r[2] == 2), default=None)
    before = [r[1] for r in records if r[0] < result["extra"]["swap_started"] and r[2] >= 0]
    during = [r[1] for r in records if published <= r[0] <= (first_v2 or published) + 1.0 and r[2] >= 0]
    after = [r[1] for r in records if first_v2 and r[0] > first_v2 + 1.0 and r[2] >= 0]
    return {
        "requests": len(records),
        "failures": len(result["errors"]),
        "errors": result["errors"][:5],
        "served_by": sorted({r[2] for r in records if r[2] >= 0}),
        "cpu_s_by_process": [cpu_after[pid] - cpu_before[pid] for pid in server.grpc_pids],
        "copy_s": published - result["extra"]["swap_started"],
        "switch_s": None if first_v2 is None else first_v2 - published,
        "qps": result["qps"],
        "before": percentiles(before) if before else {},
        "during": percentiles(during) if during else {},
        "after": percentiles(after) if after else {},
    }


def rest_during_swap(args, server: Server, ids, version_dir: str, version: int) -> dict:
    """REST at concurrency 1 while `version` is published and swapped in: the latency the target is about."""
    import threading

    from formats import serving_layout

    records: list[tuple[float, float, bool]] = []
    stop = threading.Event()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
        rng = np.random.default_rng(5)
        while not stop.is_set():
            body = json.dumps({"instances": [{"item_ids": ids[rng.integers(len(ids))], "k": 10}]})
            started = time.perf_counter()
            connection.request(
                "POST", "/v1/models/related:predict", body, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            now = time.perf_counter()
            records.append((now, now - started, response.status == 200))
        connection.close()

    def status() -> list[str]:
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
        connection.request("GET", "/v1/models/related")
        answer = json.loads(connection.getresponse().read())
        connection.close()
        return [s["version"] for s in answer["model_version_status"] if s["state"] == "AVAILABLE"]

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(args.swap_seconds / 3)
    publish_started = time.perf_counter()
    serving_layout.publish_directory(version_dir, os.path.dirname(version_dir), version)
    published = time.perf_counter()
    while str(version) not in status() and time.perf_counter() < published + 120:
        time.sleep(0.02)
    switched = time.perf_counter()
    time.sleep(max(0.0, publish_started + args.swap_seconds - time.perf_counter()))
    stop.set()
    thread.join()
    ok = [r for r in records if r[2]]
    windows = {
        "before": [r[1] for r in ok if r[0] < publish_started],
        "during": [r[1] for r in ok if publish_started <= r[0] <= switched + 1.0],
        "after": [r[1] for r in ok if r[0] > switched + 1.0],
    }
    return {
        "requests": len(records),
        "failures": len(records) - len(ok),
        "switch_s": switched - published,
        **{name: percentiles(values) if values else {} for name, values in windows.items()},
    }


# -- report ----------------------------------------------------------------------------------------------


def _ms(stats: dict, key: str) -> str:
    return f"{stats[key]:.1f}" if key in stats else "n/a"


def grpc_reading(grpc_result: dict, scann: dict) -> str:
    """What the gRPC rows say, from their own numbers: whether the target holds, and if not, why."""
    ours, python, floor = grpc_result["ours"], grpc_result["python"], grpc_result["floor"]
    load = grpc_result["load"]
    cores = os.cpu_count()
    ceiling = cores * 1e6 / (ours["cpu_us"] + ours["client_cpu_us"])
    text = (
        f"Client and server share {cores} cores, so QPS is at most {cores} CPU-seconds / (server + client "
        f"CPU per request) = {cores}e6 / ({ours['cpu_us']:,.0f} + {ours['client_cpu_us']:,.0f} us) = "
        f"{ceiling:,.0f} QPS. `pin2vec serve` receives gRPC calls in C++ (grpc++ threads, no GIL; "
        "serving/native) and answers them from one Python thread: "
        f"{ours['cpu_us']:,.0f} us of server CPU per request, against {python['cpu_us']:,.0f} us on "
        "grpc.aio. "
        f"The floor is one grpc.aio process that does no work: {floor['cpu_us']:,.0f} us per request is "
        "what gRPC in Python costs here before the request's own work (decoding, the ScaNN search at "
        f"{scann['single']['p50'] * 1000:.0f} us p50 in-process, the response tensors, the access line); "
        "on the C++ transport the whole request, that work included, costs "
        f"{ours['cpu_us'] / floor['cpu_us']:.2f}x the floor's CPU. "
        f"The load average (other jobs included) was {load[0]:.1f} before the gRPC rounds and {load[1]:.1f} "
        "after. "
    )
    if ours["qps"] >= 2000:
        return text + "The gRPC target is met. "
    return text + "The gRPC target is not met in this run. "


def grpc_rows(args, grpc_result: dict) -> list[str]:
    ours, more, python = grpc_result["ours"], grpc_result["more_workers"], grpc_result["python"]
    floor = grpc_result["floor"]

    def rounds(figures, key="all_qps"):
        return ", ".join(f"{value:,.0f}" for value in figures[key])

    def qps_cell(figures):
        return (
            f"{figures['qps']:,.0f} QPS (rounds: {rounds(figures)}), "
            f"p50 {_ms(figures['latency'], 'p50')} ms, p99 {_ms(figures['latency'], 'p99')} ms, "
            f"{figures['failures']} failed "
            f"({figures['checked']:,} answers parsed and checked)"
        )

    more_workers = args.grpc_workers + 1
    return [
        f"| gRPC, `pin2vec serve --grpc-workers {args.grpc_workers}` (the C++ transport, the default), "
        f"concurrency {args.grpc_concurrency} "
        f"over {args.grpc_channels} connections, C++ load generator (bench/grpc_load: real PredictRequests "
        f"serialized once, every status checked, the first answers of each round parsed), median of "
        f"{args.grpc_rounds} x {args.grpc_seconds:.0f} s | >= 2,000 QPS | {qps_cell(ours)} |",
        f"| same client, same server with `--grpc-workers {more_workers}`, rounds alternating with the row "
        f"above | - | {qps_cell(more)}; {more_workers / args.grpc_workers:.0f}x the processes give "
        f"{more['qps'] / ours['qps']:.2f}x |",
        f"| same client, same server on grpc.aio: `--grpc-frontend python --grpc-workers 2` (the fastest "
        f"setting before the C++ transport), rounds alternating | - | {qps_cell(python)}; the C++ transport "
        f"gives {ours['qps'] / python['qps']:.2f}x |",
        f"| same client, gRPC floor: one grpc.aio process on uvloop whose Predict does no work (a recorded "
        "response) "
        f"| - | {floor['qps']:,.0f} QPS (rounds: {rounds(floor)}) |",
        f"| server CPU per answered gRPC request, all processes and threads (median of rounds) | - | "
        f"`pin2vec serve` {ours['cpu_us']:,.0f} us (rounds: {rounds(ours, 'all_cpu_us')}), "
        f"{more_workers} workers {more['cpu_us']:,.0f} us, grpc.aio {python['cpu_us']:,.0f} us, "
        f"floor {floor['cpu_us']:,.0f} us |",
        f"| client CPU per answered request (median of rounds) | - | {ours['client_cpu_us']:,.0f} us against "
        f"`pin2vec serve`, {python['client_cpu_us']:,.0f} us against grpc.aio, "
        f"{floor['client_cpu_us']:,.0f} us against the floor |",
    ]


def report(args, recall, build_s, methods, rest, grpc_result, swap, rest_swap, predict_cpu, cpu) -> str:
    numpy_row, scann, faiss_row = methods
    command = (
        "`make bench-serving` (= `make build/grpc_load`, then `.venv/bin/python bench/bench_serving.py "
        "--grpc-load build/grpc_load --write-docs`)"
    )
    data = (
        f"{args.items:,} items x {args.dim}-d, synthetic and seeded (seed {args.seed}: {args.topics:,} "
        "Gaussian topic centres + unit noise, normalized)"
    )
    lines = [
        SECTION_START,
        "## Serving: `pin2vec serve` related items (bench/bench_serving.py)",
        "",
        f"Command: {command}. Machine: {cpu}. Measured {time.strftime('%Y-%m-%d')}. {data}. Client and "
        "server share the machine's 2 cores (and other people's jobs), so the server figures are "
        "conservative.",
        "",
        "### Index and baselines (same vectors, same 1,000 queries, in-process, k=10)",
        "",
        "| method | recall@10 vs exact | single query p50 / p99 (ms) | batched (64) queries/s | build (s) |",
        "|---|---|---|---|---|",
    ]
    for m in methods:
        build = "-" if m["build_s"] is None else f"{m['build_s']:.0f}"
        single = f"{m['single']['p50']:.2f} / {m['single']['p99']:.2f}"
        lines.append(f"| {m['method']} | {m['recall']:.3f} | {single} | {m['batched_qps']:,.0f} | {build} |")
    single_vs_numpy = numpy_row["single"]["p50"] / scann["single"]["p50"]
    batched_vs_numpy = scann["batched_qps"] / numpy_row["batched_qps"]
    single_vs_faiss = faiss_row["single"]["p50"] / scann["single"]["p50"]
    batched_vs_faiss = scann["batched_qps"] / faiss_row["batched_qps"]
    lines += [
        "",
        f"ScaNN vs numpy brute force: {single_vs_numpy:.0f}x faster per single query (p50), "
        f"{batched_vs_numpy:.0f}x batched. Vs faiss IVF-Flat at recall {faiss_row['recall']:.3f}: "
        f"{single_vs_faiss:.1f}x (single), {batched_vs_faiss:.1f}x (batched). The indexer's own recall@10 "
        f"check on its sample: {recall:.3f}.",
        "",
        "### Endpoint (`related`, k=10, one id per request)",
        "",
        "| measurement | target | result |",
        "|---|---|---|",
        f"| index recall@10 vs exact | >= 0.95 | {recall:.3f} |",
        f"| REST, concurrency 1, {rest['requests']:,} requests: p50 / p90 / p99 / max | p99 <= 10 ms | "
        f"{rest['p50']:.2f} / {rest['p90']:.2f} / {rest['p99']:.2f} / {rest['max']:.2f} ms, "
        f"{rest['failures']} failed |",
        *grpc_rows(args, grpc_result),
        *(
            f"| REST concurrency 1 while a version is published and swapped in, `--grpc-workers {workers}` "
            f"({result['requests']:,} requests): p99 before / rename to 1 s after the switch / after "
            f"| 0 failed, p99 <= 10 ms | {_ms(result['before'], 'p99')} / {_ms(result['during'], 'p99')} / "
            f"{_ms(result['after'], 'p99')} ms (max during: {_ms(result['during'], 'max')} ms), "
            f"{result['failures']} failed; switched {result['switch_s']:.1f} s after the rename |"
            for workers, result in rest_swap.items()
        ),
        f"| hot swap of version 2 under gRPC load (grpc.aio client, concurrency 16 over "
        f"{args.grpc_channels} connections, {args.swap_seconds:.0f} s, every answer checked) | 0 failed | "
        f"{swap['failures']} failed of {swap['requests']:,}; answered by versions {swap['served_by']}"
        f"{'' if 2 in swap['served_by'] else ' (**version 2 was never served: no swap was measured**)'}; "
        f"CPU seconds per server process {' / '.join(f'{c:.1f}' for c in swap['cpu_s_by_process'])} |",
        "",
        f"Hot swap detail: publishing version 2 (publish_directory: copy to a dot-temp directory, "
        f"rename) took "
        f"{swap['copy_s']:.1f} s; the first answer from version 2 came "
        f"{swap['switch_s'] if swap['switch_s'] is not None else float('nan'):.1f} s after the rename "
        f"(poll + "
        "load on the poller thread). Latency p50 / p99 (ms): before the publish "
        f"{_ms(swap['before'], 'p50')} / {_ms(swap['before'], 'p99')}; from the rename to 1 s after "
        f"the switch "
        f"{_ms(swap['during'], 'p50')} / {_ms(swap['during'], 'p99')}; after {_ms(swap['after'], 'p50')} / "
        f"{_ms(swap['after'], 'p99')} ({swap['qps']:,.0f} QPS overall).",
        "",
        f"In-process Predict (the gRPC servicer called directly, no gRPC, access log off; the load "
        f"generator's {REQUEST_POOL:,} requests, median of 3 passes): the usual request (one id, one k) "
        f"answered straight from its TensorProtos costs {predict_cpu['direct_us']:.0f} us of CPU, the same "
        f"requests down the general path (an output_filter naming every output) "
        f"{predict_cpu['general_us']:.0f} us ({predict_cpu['general_us'] / predict_cpu['direct_us']:.2f}x).",
        "",
        "Reading the figures. " + grpc_reading(grpc_result, scann),
        "The synthetic data has 1,000 topics, "
        "which suits a 1,000-list IVF: faiss needs only nprobe 1 here, so ScaNN's lead over it is small on "
        "this data. During a swap, ScaNN's loader holds the GIL for up to ~1-2 s while it deserializes a "
        "1M-item index, so a few requests wait that long once (the max column); none fail. "
        "Every process of a multi-worker server loads a pushed version at the same time: on 2 cores, the "
        "requests answered during a swap share the cores with two loads instead of one.",
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: str = os.path.join(REPO, "docs", "BENCHMARKS.md")) -> None:
    """Replaces this benchmark's section of docs/BENCHMARKS.md (`text` is the report, markers included)."""
    from bench import docs_section  # run as a script, the repository is on sys.path only from main()

    body = text.split(SECTION_START, 1)[-1].split(SECTION_END, 1)[0]
    docs_section.write_section(body, SECTION_START, SECTION_END, path)


def cpu_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import psutil

    return (
        f"{os.cpu_count()} cores ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"CPython {platform.python_version()}"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.floor_server:
        run_floor_server(args.floor_server)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log(f"generating {args.items:,} x {args.dim} vectors")
    vectors = synthetic_vectors(args.items, args.dim, args.topics, args.seed)
    version_dir, recall, build_s, _ = build_or_load_index(args, vectors)
    # A previous run's version 2 (the hot swap) goes, so the server starts on version 1.
    for stale in ("2", "3", "4"):
        shutil.rmtree(os.path.join(os.path.dirname(version_dir), stale), ignore_errors=True)
    methods = baselines(args, vectors, version_dir)
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
        floor = Server("", "", [sys.executable, os.path.abspath(__file__), "--floor-server", response_path])
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
    print(text)
    if args.write_docs:
        write_section(text)
        log("docs/BENCHMARKS.md updated")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    sys.exit(main())
