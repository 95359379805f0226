"""The gRPC front end on a C++ transport: grpc++ (serving/native/grpc_frontend.cc) receives the calls, and
one Python thread answers them with grpc_server's servicers.

grpc.aio spends about as much CPU per request on its own machinery as the related-items answer costs; here
HTTP/2 and the call bookkeeping run in C++ threads without the GIL. The usual related request (one id) is
answered on the taking thread (`PredictionServicer.predict_directly`); every other call runs the servicer's
own coroutine on the server's event loop, so methods, errors and the access log are those of grpc_server.
Build: `make setup` (serving/native/build.sh); without the build, `pin2vec serve` falls back to grpc.aio.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import importlib
import logging
import threading
import time
from typing import NoReturn

import grpc
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.access_log import log_request
from serving.grpc_server import MAX_SEND_BYTES, ModelServicer, PredictionServicer
from serving.model_registry import ModelRegistry
from serving.predict import RequestLimits

log = logging.getLogger("pin2vec.serving")
PREDICT = "/tensorflow.serving.PredictionService/Predict"
TAKE_AT_MOST = 256  # calls taken from the transport at a time


def load_transport():
    """The compiled transport module, or None when it is not built (or cannot load here)."""
    try:
        return importlib.import_module("serving._grpc_frontend")
    except ModuleNotFoundError:
        return None
    except ImportError as error:  # built, but it cannot load: say why
        log.warning("the C++ gRPC transport is built but does not load: %s", error)
        return None


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code, self.details = code, details


class _CallContext:
    """What the servicers use of grpc.aio's ServicerContext."""

    def __init__(self, peer: str, time_remaining_s: float | None):
        self._peer = peer
        self._deadline = None if time_remaining_s is None else time.monotonic() + time_remaining_s

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()) -> NoReturn:
        raise _Aborted(code, details)


class _HandlerRecorder:
    """Takes the place of a grpc server for the generated `add_*Servicer_to_server` functions, so calls
    are routed by the same generated method handlers (deserializer, servicer method) grpc.aio uses."""

    def __init__(self):
        self.handlers: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.handlers.extend(handlers)


_CallDetails = collections.namedtuple("_CallDetails", ("method", "invocation_metadata"))


class NativeGrpcServer:
    """grpc.aio.Server's start/stop over the C++ transport."""

    def __init__(self, frontend, registry: ModelRegistry, limits: RequestLimits):
        self.frontend = frontend  # a started serving._grpc_frontend.Frontend
        self.prediction = PredictionServicer(registry, limits)
        recorder = _HandlerRecorder()
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self.prediction, recorder)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(registry), recorder)
        self._generic_handlers = recorder.handlers
        self._methods: dict[str, grpc.RpcMethodHandler | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._answer_until_shut_down, name="grpc-answer", daemon=True)
        self._thread.start()

    async def stop(self, grace_s: float) -> None:
        """Refuses new calls, gives calls in progress `grace_s` seconds, then cancels the rest."""
        await asyncio.get_running_loop().run_in_executor(None, self._stop, grace_s)

    def _stop(self, grace_s: float) -> None:
        self.frontend.shutdown(grace_s)
        if self._thread is not None:
            self._thread.join()

    def _answer_until_shut_down(self) -> None:
        while (calls := self.frontend.take(TAKE_AT_MOST, 0.5)) is not None:
            for call in calls:
                try:
                    self._answer(*call)
                except Exception as error:  # a call is never left open
                    log.exception("gRPC call %s failed", call[1])
                    self._reply_error(call[0], grpc.StatusCode.INTERNAL, f"internal error: {error}")

    def _answer(self, handle: int, method: str, payload: bytes, time_remaining_s, peer: str, received: float):
        handler = self._method(method)
        if handler is None:
            self._refuse(
                handle,
                method,
                grpc.StatusCode.UNIMPLEMENTED,
                f"method {method} is not served",
                received,
                peer,
            )
            return
        try:
            request = handler.request_deserializer(payload)
        except DecodeError as error:
            message = f"the request to {method} is not a valid message of its type: {error}"
            self._refuse(handle, method, grpc.StatusCode.INVALID_ARGUMENT, message, received, peer)
            return
        if method == PREDICT:
            response = self.prediction.predict_directly(request, received, peer)
            if response is not None:
                self._send(handle, 0, "", response.SerializeToString())
                return
        future = asyncio.run_coroutine_threadsafe(
            handler.unary_unary(request, _CallContext(peer, time_remaining_s)), self._loop
        )
        future.add_done_callback(functools.partial(self._reply_with, handle, handler.response_serializer))

    def _method(self, method: str) -> grpc.RpcMethodHandler | None:
        if method not in self._methods:
            details = _CallDetails(method, ())
            found = (h.service(details) for h in self._generic_handlers)
            self._methods[method] = next((h for h in found if h is not None), None)
        return self._methods[method]

    def _reply_with(self, handle: int, serialize, future) -> None:
        try:
            code, message, response = 0, "", serialize(future.result())
        except _Aborted as aborted:
            code, message, response = aborted.code.value[0], aborted.details, None
        except Exception as error:  # the servicers report their own errors; this is a bug
            log.exception("gRPC call failed")
            code, message, response = grpc.StatusCode.INTERNAL.value[0], f"internal error: {error}", None
        self._send(handle, code, message, response)

    def _refuse(self, handle, method: str, code: grpc.StatusCode, message: str, received: float, peer: str):
        """Answers a call no servicer can take, with an access line as the servicers write."""
        log_request(
            "grpc", method.rsplit("/", 1)[-1], None, None, code.name, received, peer=peer, error=message
        )
        self._reply_error(handle, code, message)

    def _reply_error(self, handle: int, code: grpc.StatusCode, message: str) -> None:
        self._send(handle, code.value[0], message, None)

    def _send(self, handle: int, code: int, message: str, response: bytes | None) -> None:
        try:
            self.frontend.reply(handle, code, message, response)
        except KeyError:  # answered already: before a failure, or by a shutdown that gave up waiting
            log.warning("gRPC call %d was answered already; this answer is dropped", handle)


def build_native_server(
    transport, registry: ModelRegistry, limits: RequestLimits, address: str, reuse_port: bool = False
) -> tuple[NativeGrpcServer, int]:
    """As grpc_server.build_server, on the C++ transport; it listens from here on, answering from `start`."""
    frontend = transport.Frontend(address, limits.max_body_bytes, MAX_SEND_BYTES, reuse_port)
    return NativeGrpcServer(frontend, registry, limits), frontend.port
