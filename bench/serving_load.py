"""Client load on a running `pin2vec serve`: REST and gRPC threads asking one model the same question until
stopped, counting answers, failures, and answers that differ from the expected one (a version that should
never have been served)."""

from __future__ import annotations

import dataclasses
import json
import threading

import grpc
import numpy as np
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from formats import index_files
from serving.tensors import array_to_proto


@dataclasses.dataclass
class LoadCounts:
    ok: int = 0
    failed: int = 0
    different: int = 0  # answered, but not with the expected answer
    failures: list[str] = dataclasses.field(default_factory=list)


class RelatedLoad:
    """`threads_per_protocol` REST and as many gRPC clients asking `model` for `item_ids`' related items. The
    first answer of each protocol (taken before the load starts) is the expected one."""

    def __init__(self, rest: str, grpc_target: str, model: str, item_ids: list[str], threads_per_protocol=2):
        self.rest_url = f"{rest}/v1/models/{model}:predict"
        self.body = json.dumps({"inputs": {"item_ids": item_ids, "k": 10}})
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        encoded = np.array([index_files.encode_item_id(i) for i in item_ids], dtype=object)
        request.inputs["item_ids"].CopyFrom(array_to_proto(encoded))
        self.grpc_request = request
        self.grpc_target = grpc_target
        self.counts = {"rest": LoadCounts(), "grpc": LoadCounts()}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.expected_rest = self._rest_answer(requests.Session())
        channel = grpc.insecure_channel(grpc_target)
        self.expected_grpc = self._grpc_answer(prediction_service_pb2_grpc.PredictionServiceStub(channel))
        channel.close()
        self.threads = [threading.Thread(target=self._rest_loop) for _ in range(threads_per_protocol)]
        self.threads += [threading.Thread(target=self._grpc_loop) for _ in range(threads_per_protocol)]

    def __enter__(self) -> RelatedLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def total_ok(self) -> int:
        with self.lock:
            return sum(c.ok for c in self.counts.values())

    def _rest_answer(self, session):
        response = session.post(self.rest_url, data=self.body, timeout=10)
        response.raise_for_status()
        return response.json()["outputs"]["related_ids"]

    def _grpc_answer(self, stub):
        return stub.Predict(self.grpc_request, timeout=10).outputs["related_ids"].SerializeToString()

    def _record(self, protocol: str, answer=None, expected=None, failure: str | None = None) -> None:
        with self.lock:
            counts = self.counts[protocol]
            if failure is not None:
                counts.failed += 1
                counts.failures.append(failure[:200])
            elif answer != expected:
                counts.different += 1
            else:
                counts.ok += 1

    def _rest_loop(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                self._record("rest", self._rest_answer(session), self.expected_rest)
            except (requests.RequestException, KeyError, ValueError) as error:
                self._record("rest", failure=repr(error))

    def _grpc_loop(self) -> None:
        channel = grpc.insecure_channel(self.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not self.stop.is_set():
            try:
                self._record("grpc", self._grpc_answer(stub), self.expected_grpc)
            except grpc.RpcError as error:
                self._record("grpc", failure=f"{error.code()}: {error.details()}")
        channel.close()
