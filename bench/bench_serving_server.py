"""The servers bench-serving measures, each its own process: `pin2vec serve`, and the gRPC floor (a grpc.aio
PredictionService answering a recorded response with no work), run as `python -m bench.bench_serving_server
RESPONSE_FILE`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def floor_server(response_path: str) -> Server:
    """The floor server (run_floor_server in its own process), answering `response_path`'s response."""
    return Server("", "", [sys.executable, "-m", "bench.bench_serving_server", response_path])


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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.executable} -m bench.bench_serving_server RESPONSE_FILE")
    run_floor_server(sys.argv[1])
