"""`pin2vec serve --grpc-workers N`: worker processes on the server's gRPC port, each answering and
swapping versions on its own, gone with the server; a taken port is an error unless shared on purpose."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import grpc
import numpy as np
import psutil
import pytest
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from formats import index_files
from serving import grpc_workers
from serving.grpc_server import build_server
from serving.model_registry import ModelRegistry
from serving.predict import RequestLimits
from serving.related_model import RelatedSettings
from serving.server import ServerSettings
from serving.tensors import array_to_proto, proto_to_array
from tests.serving.conftest import ITEM_IDS, publish, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHANNELS = 24  # connections spread over the listening sockets by hash: all on one of two is 2 ** -23


def test_worker_settings_travel_as_json():
    settings = ServerSettings(
        model_base="/m",
        host="::1",
        grpc_port=9000,
        limits=RequestLimits(max_body_bytes=1000, max_instances=3, timeout_s=2.5),
        related=RelatedSettings(max_k=7, default_k=5),
        grpc_workers=3,
    )
    assert grpc_workers.settings_from_json(grpc_workers.settings_to_json(settings)) == settings
    with pytest.raises(ValueError, match="grpc_workers must be >= 1"):
        ServerSettings(model_base="/m", grpc_workers=0)


def test_a_taken_grpc_port_is_an_error_unless_shared_on_purpose(tmp_path):
    registry = ModelRegistry(str(tmp_path), [], 1)
    _, port = build_server(registry, RequestLimits(), "127.0.0.1:0")
    with pytest.raises(RuntimeError, match="Failed to bind"):
        build_server(registry, RequestLimits(), f"127.0.0.1:{port}")  # gRPC's default would share it
    _, shared_port = build_server(registry, RequestLimits(), "127.0.0.1:0", reuse_port=True)
    _, worker_port = build_server(registry, RequestLimits(), f"127.0.0.1:{shared_port}", reuse_port=True)
    assert worker_port == shared_port


def _request() -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "related"
    request.inputs["item_ids"].CopyFrom(
        array_to_proto(np.array([index_files.encode_item_id(ITEM_IDS[7])], dtype=object))
    )
    return request


def _answers(stubs) -> list[tuple[int, list[bytes]]]:
    out = []
    for stub in stubs:
        response = stub.Predict(_request(), timeout=10)
        ids = proto_to_array(response.outputs["related_ids"], "related_ids")[0].tolist()
        out.append((response.model_spec.version.value, ids))
    return out


def test_workers_share_the_port_swap_versions_and_go_with_the_server(artifacts, tmp_path):
    base = str(tmp_path / "serving")
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--model-base", base, "--rest-port", "0"]
    command += ["--grpc-port", "0", "--grpc-workers", "2", "--poll-seconds", "0.2"]
    command += ["--access-log", str(tmp_path / "access.jsonl")]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    channels = []
    try:
        ready = json.loads(server.stdout.readline() or "{}")
        assert ready.get("event") == "ready", (
            server.stderr.read()[-3000:] if server.poll() is not None else ""
        )
        pids, port = ready["grpc_pids"], ready["grpc_port"]
        assert len(pids) == 2 and pids[0] == server.pid
        options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
        channels = [grpc.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(CHANNELS)]
        stubs = [prediction_service_pb2_grpc.PredictionServiceStub(channel) for channel in channels]

        first = _answers(stubs)
        assert {version for version, _ in first} == {1}
        assert all(ids == first[0][1] for _, ids in first) and len(first[0][1]) == 10

        def connected(pid):
            return [
                c
                for c in psutil.Process(pid).net_connections(kind="tcp")
                if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
            ]

        assert all(connected(pid) for pid in pids), "every process should hold some of the connections"
        assert sum(len(connected(pid)) for pid in pids) == CHANNELS

        publish(artifacts.index_b, base, "pin2vec_similar", 2)  # each process polls and swaps on its own

        def all_on_version_2():
            answers = _answers(stubs)
            return answers if {version for version, _ in answers} == {2} else None

        second = wait_until(all_on_version_2, 60, "every process to serve version 2")
        assert second[0][1] != first[0][1]  # version 2's index has other vectors

        server.send_signal(signal.SIGKILL)  # no clean shutdown: the worker must notice on its own
        server.wait(timeout=10)
        wait_until(lambda: not psutil.pid_exists(pids[1]), 15, "the worker to exit after its server")
    finally:
        for channel in channels:
            channel.close()
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=30)
