"""bench-serving's load drivers: pre-serialized PredictRequests, the C++ load generator's rounds (with the
server's CPU per request), REST at concurrency 1, and a grpc.aio closed loop that checks every answer."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import struct
import subprocess
import time

import numpy as np

from bench.bench_serving_server import Server
from bench.latency import percentiles
from bench.progress import log

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


REQUEST_POOL = 4096  # distinct pre-serialized requests the callers cycle through


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


def _cpu_seconds(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def cpu_seconds_by_pid(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system, all threads) used so far by each process."""
    import psutil

    return {pid: _cpu_seconds(psutil.Process(pid)) for pid in pids}


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


def grpc_rounds(args, targets: dict[str, Server], requests_path: str) -> dict:
    """Rounds alternating over `targets` (label -> server), the same client and requests for each; medians.

    Besides QPS (which other jobs on the machine move a lot), each round records the server processes' CPU
    seconds per answered request, all threads included (gRPC's own threads too), and each process's share.
    """
    load_before = os.getloadavg()[0]
    results: dict[str, list[dict]] = {label: [] for label in targets}
    for round_ in range(args.grpc_rounds):
        for label, server in targets.items():
            before = cpu_seconds_by_pid(server.grpc_pids)
            result = native_load(args, server, requests_path, args.grpc_seconds, args.grpc_channels)
            after = cpu_seconds_by_pid(server.grpc_pids)
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
