"""The C++ gRPC transport (serving._grpc_frontend) on its own, with a Python thread answering, and
`pin2vec serve` on it: routing, malformed and unknown calls, deadlines, shutdown, many calls at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import os
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from formats import index_files
from serving.model_registry import ModelRegistry
from serving.native_grpc_server import NativeGrpcServer, load_transport
from serving.server import ServerSettings, build_grpc_server
from serving.tensors import array_to_proto, proto_to_array
from tests.serving.conftest import ITEM_IDS, publish, running_server

transport = load_transport()
if transport is None:
    _why = "the C++ gRPC transport is not built: `make setup` builds it (serving/native/build.sh)"
    if os.environ.get("CI"):
        raise RuntimeError(_why)  # CI must test it
    pytest.skip(_why, allow_module_level=True)


class EchoAnswerer:
    """Answers every call with its request reversed; b"fail" gets INVALID_ARGUMENT."""

    def __init__(self, frontend):
        self.frontend = frontend
        self.seen: list[tuple] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while (calls := self.frontend.take(64, 0.1)) is not None:
            for handle, method, request, remaining, peer, received in calls:
                self.seen.append((method, remaining, peer, received))
                if request == b"fail":
                    self.frontend.reply(handle, grpc.StatusCode.INVALID_ARGUMENT.value[0], "no good", None)
                else:
                    self.frontend.reply(handle, 0, "", request[::-1])


@pytest.fixture()
def frontend():
    started = transport.Frontend("127.0.0.1:0", 1024, 1 << 20, False)
    yield started
    started.shutdown(0)


def _call(port: int, method: str = "/test.Echo/Reverse"):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, channel.unary_unary(method)


def _take_one(frontend) -> int:
    """The handle of the one call the test sent, once it reaches Python."""
    taken = []
    while not taken:
        taken = frontend.take(8, 1.0)
    assert len(taken) == 1
    return taken[0][0]


def test_calls_reach_python_and_answers_and_errors_reach_the_client(frontend):
    answerer = EchoAnswerer(frontend)
    channel, call = _call(frontend.port)
    with channel:
        before = time.perf_counter()
        assert call(b"hello", timeout=5) == b"olleh"
        with pytest.raises(grpc.RpcError) as error:
            call(b"fail", timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details() == "no good"
        with pytest.raises(grpc.RpcError) as error:
            call(b"x" * 2000, timeout=5)  # over max_receive_bytes: refused before Python sees it
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert call(b"", timeout=5) == b""
    method, remaining, peer, received = answerer.seen[0]
    assert method == "/test.Echo/Reverse" and 0 < remaining <= 5 and peer.startswith("ipv4:127.0.0.1:")
    assert before <= received <= time.perf_counter()  # time.perf_counter()'s clock
    assert len(answerer.seen) == 3


def test_a_call_is_answered_exactly_once_and_codes_are_checked(frontend):
    channel, call = _call(frontend.port)
    with channel:
        future = call.future(b"abc", timeout=5)
        handle = _take_one(frontend)
        with pytest.raises(ValueError, match="0-16"):
            frontend.reply(handle, 17, "", None)
        with pytest.raises(TypeError, match="bytes or None"):
            frontend.reply(handle, 0, "", "text")
        frontend.reply(handle, 0, "", b"done")
        with pytest.raises(KeyError, match="already answered"):
            frontend.reply(handle, 0, "", b"again")
        assert future.result() == b"done"


def test_calls_past_their_deadline_are_answered_by_the_transport(frontend):
    channel, call = _call(frontend.port)
    with channel:
        future = call.future(b"late", timeout=0.2)
        with pytest.raises(grpc.RpcError) as error:
            future.result()
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert frontend.take(8, 0.2) == []  # Python never sees it


def test_shutdown_answers_waiting_calls_and_take_then_ends(frontend):
    channel, call = _call(frontend.port)
    with channel:
        futures = [call.future(b"never taken", timeout=10) for _ in range(3)]
        time.sleep(0.3)  # they wait in the queue: nobody takes them
        started = time.monotonic()
        frontend.shutdown(0.2)
        assert time.monotonic() - started < 5
        for future in futures:
            with pytest.raises(grpc.RpcError) as error:
                future.result()
            assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert frontend.take(8, 0.1) is None


def test_shutdown_gives_up_on_calls_python_never_answers(frontend):
    channel, call = _call(frontend.port)
    with channel:
        future = call.future(b"held", timeout=30)
        handle = _take_one(frontend)
        started = time.monotonic()
        frontend.shutdown(0.1, 0.3)  # without giving up, it would wait for that answer forever
        assert time.monotonic() - started < 5
        with pytest.raises(grpc.RpcError) as error:
            future.result()
        assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        with pytest.raises(KeyError):  # its late answer is refused
            frontend.reply(handle, 0, "", b"late")


def test_a_taken_port_is_an_error_unless_shared(frontend):
    with pytest.raises(OSError, match=f"127.0.0.1:{frontend.port}"):
        transport.Frontend(f"127.0.0.1:{frontend.port}", 1024, 1024, False)
    shared = transport.Frontend("127.0.0.1:0", 1024, 1024, True)
    second = transport.Frontend(f"127.0.0.1:{shared.port}", 1024, 1024, True)
    assert second.port == shared.port
    second.shutdown(0)
    shared.shutdown(0)


# -- pin2vec serve on the transport -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def native_server(artifacts, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("native"))
    publish(artifacts.index_b, base, "pin2vec_similar", 1)
    with running_server(base, grpc_frontend="native") as running:
        yield running


def _request(item_id: str, k: int | None = None) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "related"
    request.inputs["item_ids"].CopyFrom(
        array_to_proto(np.array([index_files.encode_item_id(item_id)], dtype=object))
    )
    if k is not None:
        request.inputs["k"].CopyFrom(array_to_proto(np.array(k, dtype=np.int32)))
    return request


def test_unknown_methods_and_malformed_requests_get_clear_statuses(native_server, caplog):
    caplog.set_level(logging.INFO, logger="pin2vec.access")
    with grpc.insecure_channel(native_server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as error:
            channel.unary_unary("/tensorflow.serving.PredictionService/Nope")(b"", timeout=5)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED and "Nope" in error.value.details()
        with pytest.raises(grpc.RpcError) as error:
            channel.unary_unary("/tensorflow.serving.PredictionService/Predict")(b"\xff\xff\xff", timeout=5)
        assert (
            error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid" in error.value.details()
        )
        with pytest.raises(grpc.RpcError) as error:  # Classify: the servicer's own answer, over the loop
            channel.unary_unary("/tensorflow.serving.PredictionService/Classify")(b"", timeout=5)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED and "only Predict" in error.value.details()
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "pin2vec.access"]
    assert [(line["method"], line["status"]) for line in lines[:2]] == [
        ("Nope", "UNIMPLEMENTED"),
        ("Predict", "INVALID_ARGUMENT"),
    ]
    assert lines[1]["peer"].startswith("ipv4:127.0.0.1:") and "not a valid" in lines[1]["error"]


def test_many_concurrent_calls_get_their_own_answers(native_server, artifacts):
    ids = [ITEM_IDS[i % 40] for i in range(256)]
    with grpc.insecure_channel(native_server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        expected = {i: stub.Predict(_request(i, 5), timeout=10) for i in set(ids)}
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda i: stub.Predict(_request(i, 5), timeout=10), ids))
    assert all(answer == expected[i] for i, answer in zip(ids, answers, strict=True))
    first = proto_to_array(answers[0].outputs["related_ids"], "related_ids")
    assert first.shape == (1, 5) and first[0][0].decode() != ids[0]


def test_the_python_front_end_is_chosen_on_request_and_native_fails_clearly_without_its_build(
    tmp_path, monkeypatch
):
    registry = ModelRegistry(str(tmp_path), [], 1)
    settings = ServerSettings(model_base=str(tmp_path), grpc_port=0)

    async def build(grpc_frontend: str):  # grpc.aio servers are made on a running loop
        server, _ = build_grpc_server(
            dataclasses.replace(settings, grpc_frontend=grpc_frontend), registry, False
        )
        if isinstance(server, NativeGrpcServer):
            server.frontend.shutdown(0)
        return server

    assert isinstance(asyncio.run(build("python")), grpc.aio.Server)
    assert isinstance(asyncio.run(build("auto")), NativeGrpcServer)  # the build is present
    monkeypatch.setattr("serving.native_grpc_server.importlib.import_module", _missing)
    with pytest.raises(RuntimeError, match="make setup"):
        asyncio.run(build("native"))
    assert isinstance(asyncio.run(build("auto")), grpc.aio.Server)
    with pytest.raises(ValueError, match="grpc_frontend must be one of"):
        ServerSettings(model_base="/m", grpc_frontend="rust")


def _missing(name):
    raise ModuleNotFoundError(f"No module named {name!r}")
