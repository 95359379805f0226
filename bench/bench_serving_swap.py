"""bench-serving's swap latency: a new version published (formats.serving_layout.publish_directory) while
clients keep asking, over gRPC (every answer checked, which version answered) and REST at concurrency 1."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
import time

import numpy as np

from bench.bench_serving_load import cpu_seconds_by_pid, grpc_load
from bench.bench_serving_server import Server
from bench.latency import percentiles
from bench.progress import log


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

    cpu_before = cpu_seconds_by_pid(server.grpc_pids)
    result = asyncio.run(
        grpc_load(server, ids, 16, args.swap_seconds, publish_during_load, channels=args.grpc_channels)
    )
    cpu_after = cpu_seconds_by_pid(server.grpc_pids)
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
