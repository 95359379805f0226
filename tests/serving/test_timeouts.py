"""Timeouts on the real server: a prediction that takes too long, and clients that send too slowly."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import grpc
import numpy as np
import pytest
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.predict import RequestLimits
from serving.signatures import signature_def
from serving.tensors import array_to_proto
from tests.serving.conftest import running_server

TIMEOUT_S = 0.5
HEADER_TIMEOUT_S = 1.0


class SleepingServable:
    """A model whose prediction runs on a thread and takes as many seconds as its input says."""

    def __init__(self, directory: str, version: int):
        self.directory = directory
        self.version = version
        self._pool = concurrent.futures.ThreadPoolExecutor(2)
        self.signature_defs = {
            "serving_default": signature_def(
                inputs={"seconds": ("DT_FLOAT", [-1])}, outputs={"slept": ("DT_FLOAT", [-1])}
            )
        }

    def optional_inputs(self, signature_name: str) -> frozenset[str]:
        return frozenset()

    def submit(self, signature_name, inputs):
        return self._pool.submit(self._sleep, inputs["seconds"])

    @staticmethod
    def _sleep(seconds: np.ndarray) -> dict[str, np.ndarray]:
        time.sleep(float(seconds.max(initial=0.0)))
        return {"slept": seconds.astype(np.float32)}

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class SleepingLoader:
    name = "sleepy"

    def missing_files(self, version_dir: str) -> list[str]:
        return []

    def load(self, version_dir: str, version: int) -> SleepingServable:
        return SleepingServable(version_dir, version)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("timeouts")
    (base / "sleepy" / "1").mkdir(parents=True)
    limits = RequestLimits(max_body_bytes=64 * 1024, max_instances=64, timeout_s=TIMEOUT_S)
    with running_server(
        str(base), loaders=[SleepingLoader()], limits=limits, rest_header_timeout_s=HEADER_TIMEOUT_S
    ) as running:
        yield running


def _rest(server, seconds: float):
    started = time.perf_counter()
    response = requests.post(
        f"{server.rest}/v1/models/sleepy:predict", data=json.dumps({"instances": [seconds]}), timeout=10
    )
    return response, time.perf_counter() - started


def _grpc(server, seconds: float):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "sleepy"
    request.inputs["seconds"].CopyFrom(array_to_proto(np.array([seconds], dtype=np.float32)))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        started = time.perf_counter()
        try:
            return stub.Predict(request, timeout=10), time.perf_counter() - started
        except grpc.RpcError as error:
            return error, time.perf_counter() - started


def test_a_prediction_over_the_timeout_is_answered_deadline_exceeded(server):
    quick, _ = _rest(server, 0.0)
    assert quick.status_code == 200 and quick.json()["predictions"] == [0.0]
    slow, elapsed = _rest(server, 3.0)
    assert slow.status_code == 504, slow.text
    assert f"longer than {TIMEOUT_S:.3f} s" in slow.json()["error"]
    assert TIMEOUT_S <= elapsed < 2.0  # answered at the timeout, not when the work ends
    answer, _ = _grpc(server, 0.0)
    assert list(answer.outputs["slept"].tensor_content) == list(np.float32([0.0]).tobytes())
    error, elapsed = _grpc(server, 3.0)
    assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"longer than {TIMEOUT_S:.3f} s" in error.details()
    assert TIMEOUT_S <= elapsed < 2.0


def _read_until(connection: socket.socket, marker: bytes, limit_s: float) -> tuple[bytes, float]:
    """What the server sends until `marker` arrives, it closes the connection or `limit_s` passes."""
    started = time.perf_counter()
    received = b""
    while marker not in received and (left := limit_s - (time.perf_counter() - started)) > 0:
        connection.settimeout(left)
        try:
            chunk = connection.recv(4096)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        received += chunk
    return received, time.perf_counter() - started


def test_a_client_that_trickles_its_headers_is_cut_off(server):
    with socket.create_connection(("127.0.0.1", server.rest_port)) as connection:
        started = time.perf_counter()
        connection.sendall(b"POST /v1/models/sleepy:predict HTTP/1.1\r\nHost: x\r\n")
        closed = False
        while time.perf_counter() - started < HEADER_TIMEOUT_S + 3:
            try:
                connection.sendall(b"X-Slow: y\r\n")  # one header line at a time, never the blank line
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            connection.settimeout(0.2)
            try:
                if connection.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        elapsed = time.perf_counter() - started
    assert closed, "the server kept a connection that never finished its headers"
    assert HEADER_TIMEOUT_S * 0.9 <= elapsed < HEADER_TIMEOUT_S + 2


def test_a_client_that_stalls_its_body_gets_504(server):
    with socket.create_connection(("127.0.0.1", server.rest_port)) as connection:
        connection.sendall(
            b"POST /v1/models/sleepy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"instances": '
        )
        received, elapsed = _read_until(connection, b"in time", limit_s=TIMEOUT_S + 3)
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 504 Gateway Timeout", received[:200]
    assert b"request body not received in time" in rest
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + 2
