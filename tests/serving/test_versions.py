"""Versions on the real server: hot swap under concurrent REST and gRPC load with zero failures, half-written
versions ignored, broken versions refused while the previous one serves."""

from __future__ import annotations

import json
import os
import shutil
import threading

import grpc
import numpy as np
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from bench.version_damage import INDEX_DAMAGE
from formats import index_files, push_records, serving_layout
from serving.rollback import rollback
from serving.tensors import array_to_proto
from tests.serving.conftest import ITEM_IDS, copy_partially, publish, running_server, wait_until

_LOAD_BODY = json.dumps({"inputs": {"item_ids": ITEM_IDS[3:11], "k": 5}})


def _served_versions(server, model="related"):
    response = requests.get(f"{server.rest}/v1/models/{model}", timeout=10)
    if response.status_code != 200:
        return {}
    return {int(s["version"]): s for s in response.json()["model_version_status"]}


def _related_version(server):
    body = json.dumps({"instances": [ITEM_IDS[4]]})
    response = requests.post(f"{server.rest}/v1/models/related:predict", data=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]["related_ids"]


class _Load:
    """Client threads calling `related` over REST and gRPC until stopped; counts answers and failures."""

    def __init__(self, server, threads_per_protocol=3, expected_rest=None):
        """`expected_rest`: the one REST answer every request must get (None: any well-formed answer)."""
        self.server = server
        self.expected_rest = expected_rest
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.versions: set[int] = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._rest) for _ in range(threads_per_protocol)]
        self.threads += [threading.Thread(target=self._grpc) for _ in range(threads_per_protocol)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _record(self, ok, detail=None, version=None):
        with self.lock:
            if ok:
                self.ok += 1
                if version is not None:  # gRPC answers name the version that served them
                    self.versions.add(version)
            else:
                self.failures.append(detail)

    def _rest(self):
        session = requests.Session()
        body = _LOAD_BODY
        while not self.stop.is_set():
            try:
                response = session.post(
                    f"{self.server.rest}/v1/models/related:predict", data=body, timeout=10
                )
                ok = response.status_code == 200 and len(response.json()["outputs"]["related_ids"]) == 8
                if ok and self.expected_rest is not None:
                    ok = response.json()["outputs"] == self.expected_rest
                self._record(ok, response.text[:200])
            except requests.RequestException as error:
                self._record(False, repr(error))

    def _grpc(self):
        channel = grpc.insecure_channel(self.server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "related"
        ids = np.array([index_files.encode_item_id(i) for i in ITEM_IDS[:8]], dtype=object)
        request.inputs["item_ids"].CopyFrom(array_to_proto(ids))
        while not self.stop.is_set():
            try:
                response = stub.Predict(request, timeout=10)
                self._record(True, version=response.model_spec.version.value)
            except grpc.RpcError as error:
                self._record(False, f"{error.code()}: {error.details()}")
        channel.close()


def test_hot_swap_under_concurrent_load_fails_no_request(artifacts, tmp_path):
    base = str(tmp_path)
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    with running_server(base, keep_versions=1) as server, _Load(server) as load:
        wait_until(lambda: load.ok > 50)
        before = _related_version(server)
        publish(artifacts.index_b, base, "pin2vec_similar", 2)
        wait_until(lambda: 2 in load.versions)
        wait_until(lambda: list(_served_versions(server)) == [2])  # version 1 unloaded: keep_versions=1
        served_after = load.ok
        wait_until(lambda: load.ok > served_after + 50)
        after = _related_version(server)
    assert load.failures == []
    assert load.versions == {1, 2}
    assert before != after  # the index really changed under the clients


def test_half_written_and_broken_versions_are_not_served(artifacts, tmp_path, caplog):
    base = str(tmp_path)
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    with running_server(base) as server:
        expected = _related_version(server)
        related = os.path.join(base, "pin2vec_similar")
        # A push in progress (dot-temp name), and a version copied without its index.json (non-atomic copy).
        shutil.copytree(artifacts.index_b, os.path.join(related, ".5.tmp-abc"))
        copy_partially(artifacts.index_b, os.path.join(related, "6"), skip=index_files.METADATA_FILE)
        # A complete-looking version whose data is broken.
        shutil.copytree(artifacts.index_b, os.path.join(related, "7"))
        with open(os.path.join(related, "7", index_files.ITEM_IDS_FILE), "wb") as f:
            f.write(b"truncated")
        wait_until(lambda: 7 in _served_versions(server))
        statuses = _served_versions(server)
        assert statuses[7]["state"] == "END"
        assert "does not end with a newline" in statuses[7]["status"]["error_message"]
        assert set(statuses) == {1, 7} and statuses[1]["state"] == "AVAILABLE"
        assert _related_version(server) == expected  # version 1 keeps serving
        assert "version 7" in caplog.text and "refused" in caplog.text
        # The interrupted copy completes: now it is loaded.
        shutil.copy(
            os.path.join(artifacts.index_b, index_files.METADATA_FILE),
            os.path.join(related, "6", "index.json"),
        )
        wait_until(lambda: _served_versions(server).get(6, {}).get("state") == "AVAILABLE")
        assert _related_version(server) != expected


def test_a_removed_version_is_unloaded_and_pinning_it_is_not_found(artifacts, tmp_path):
    base = str(tmp_path)
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    publish(artifacts.index_b, base, "pin2vec_similar", 2)
    with running_server(base) as server:
        assert set(_served_versions(server)) == {1, 2}
        shutil.rmtree(os.path.join(base, "pin2vec_similar", "2"))  # an operator removes version 2
        wait_until(lambda: set(_served_versions(server)) == {1})
        response = requests.post(
            f"{server.rest}/v1/models/related/versions/2:predict", data='{"instances": ["x"]}', timeout=10
        )
        assert response.status_code == 404


def test_no_version_yet_is_unavailable_not_a_crash(tmp_path):
    with running_server(str(tmp_path)) as server:
        response = requests.post(
            f"{server.rest}/v1/models/related:predict", data='{"instances": ["x"]}', timeout=10
        )
        assert response.status_code == 404 and "Latest(related): no version of" in response.json()["error"]


def test_corrupt_versions_moved_in_under_load_are_never_served(artifacts, tmp_path):
    """REST and gRPC clients call `related` while seven damaged copies of the good version are moved in one
    after another: no request fails and every answer is the good version's."""
    base = tmp_path / "serving"
    sources = {serving_layout.PIN2VEC_SIMILAR_MODEL: artifacts.index_a}
    good = serving_layout.publish_version(str(base), sources, {"index": "a"}).version
    record = push_records.committed(str(base))[good]
    model_base = base / serving_layout.PIN2VEC_SIMILAR_MODEL
    with running_server(str(base)) as server:
        expected = requests.post(f"{server.rest}/v1/models/related:predict", data=_LOAD_BODY, timeout=10)
        with _Load(server, expected_rest=expected.json()["outputs"]) as load:
            wait_until(lambda: load.ok > 20)
            for offset, (name, corrupt) in enumerate(INDEX_DAMAGE.items(), start=1):
                version = good + offset
                staging = base / f".corrupt-{offset}"
                shutil.copytree(model_base / str(good), staging)
                corrupt(staging)
                os.rename(staging, model_base / str(version))
                push_records.write_commit(str(base), version, record)
                refused = wait_until(
                    lambda v=version: _served_versions(server).get(v, {}).get("state") == "END",
                    what=f"version {version} ({name}) to be refused",
                )
                assert refused, name
            answered = load.ok
            wait_until(lambda: load.ok > answered + 20)
    assert load.failures == []
    assert load.versions == {good}  # every gRPC answer came from the good version


def test_a_rollback_reaches_a_running_server_within_a_poll_with_no_failed_request(artifacts, tmp_path):
    base = tmp_path / "serving"
    similar = serving_layout.PIN2VEC_SIMILAR_MODEL
    first = serving_layout.publish_version(str(base), {similar: artifacts.index_a}, {"index": "a"}).version
    second = serving_layout.publish_version(str(base), {similar: artifacts.index_b}, {"index": "b"}).version
    with running_server(str(base), keep_versions=1) as server, _Load(server) as load:
        wait_until(lambda: _related_version(server) and second in load.versions)
        newest_answer = _related_version(server)
        assert "(was" in rollback(str(base), previous=True)
        wait_until(lambda: list(_served_versions(server)) == [first], what="the rollback to be served")
        served = load.ok
        wait_until(lambda: load.ok > served + 50)
        assert _related_version(server) != newest_answer
        rollback(str(base), release=True)
        wait_until(lambda: list(_served_versions(server)) == [second], what="the release to be served")
        assert _related_version(server) == newest_answer
    assert load.failures == []
    assert load.versions == {first, second}
