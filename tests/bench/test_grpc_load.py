"""The C++ gRPC load generator (bench/grpc_load) against a real gRPC server that counts what it gets."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import threading
from concurrent import futures

import grpc
import pytest

from bench.bench_serving_load import read_records, write_requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(REPO, "build", "grpc_load")


def _has_grpcpp() -> bool:
    found = shutil.which("pkg-config") and shutil.which("g++")
    return bool(found) and subprocess.run(["pkg-config", "--exists", "grpc++"]).returncode == 0


pytestmark = pytest.mark.skipif(
    not _has_grpcpp(), reason="grpc++ headers missing: `make build/grpc_load` installs them (apt-get)"
)


def test_grpc_load_counts_answers_and_failures_and_keeps_samples(tmp_path):
    subprocess.run([os.path.join(REPO, "bench", "grpc_load", "build.sh")], check=True)
    seen: list[bytes] = []
    lock = threading.Lock()

    def answer(request: bytes, context):
        with lock:
            seen.append(request)
            number = len(seen)
        if number % 10 == 0:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"refused request {number}")
        return b"answer:" + request

    server = grpc.server(futures.ThreadPoolExecutor(4))
    handler = grpc.method_handlers_generic_handler("T", {"M": grpc.unary_unary_rpc_method_handler(answer)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    requests = [b"first", b"second", b"third"]
    write_requests(requests, str(tmp_path / "requests.bin"))
    try:
        command = [BINARY, "--target", f"127.0.0.1:{port}", "--method", "/T/M", "--requests"]
        command += [str(tmp_path / "requests.bin"), "--concurrency", "4", "--channels", "2", "--seconds", "1"]
        command += ["--samples", str(tmp_path / "answers.bin"), "--max-samples", "5"]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    finally:
        server.stop(0)

    assert result["answered"] + result["failed"] == len(seen) > 20
    assert result["failed"] == len(seen) // 10
    assert result["errors"] and "refused request 10" in result["errors"][0]
    assert set(seen) == set(requests)  # the records are cycled through
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    answers = read_records(str(tmp_path / "answers.bin"))
    assert len(answers) == 5 and all(a.startswith(b"answer:") and a[7:] in requests for a in answers)


def test_grpc_load_names_a_cut_short_requests_file(tmp_path):
    subprocess.run([os.path.join(REPO, "bench", "grpc_load", "build.sh")], check=True)
    (tmp_path / "requests.bin").write_bytes(struct.pack("<I", 100) + b"short")
    command = [BINARY, "--target", "127.0.0.1:1", "--requests", str(tmp_path / "requests.bin")]
    failed = subprocess.run(command, capture_output=True, text=True)
    assert failed.returncode == 2 and "record 0 is cut short" in failed.stderr
