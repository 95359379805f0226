"""One predict call, the same for REST and gRPC: resolve the version, check the inputs, run, time out."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Callable

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2

from serving.errors import Code, ServingError
from serving.model_registry import ModelRegistry

DEFAULT_SIGNATURE = "serving_default"


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request; both front ends enforce them."""

    max_body_bytes: int = 4 * 1024 * 1024  # REST body and gRPC message
    max_instances: int = 1024  # rows (the first dimension of every input)
    timeout_s: float = 10.0  # a prediction that takes longer is answered DEADLINE_EXCEEDED

    def __post_init__(self):
        for name in ("max_body_bytes", "max_instances"):
            if getattr(self, name) < 1:
                raise ValueError(f"RequestLimits.{name} must be >= 1; got {getattr(self, name)}")
        if not self.timeout_s > 0:
            raise ValueError(f"RequestLimits.timeout_s must be > 0; got {self.timeout_s}")


@dataclasses.dataclass
class PredictResult:
    version: int
    signature_name: str
    outputs: dict[str, np.ndarray]


def find_signature(servable, name: str, signature_name: str) -> meta_graph_pb2.SignatureDef:
    signature = servable.signature_defs.get(signature_name or DEFAULT_SIGNATURE)
    if signature is None:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"Serving signature name: \"{signature_name}\" not found in signature def of model '{name}'; "
            f"signatures: {sorted(servable.signature_defs)}",
        )
    return signature


def check_inputs(
    inputs: dict[str, np.ndarray],
    signature: meta_graph_pb2.SignatureDef,
    optional: frozenset[str],
    limits: RequestLimits,
) -> None:
    expected = signature.inputs
    if not all(input_name in expected for input_name in inputs):
        unknown = sorted(set(inputs) - set(expected))
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"unknown input(s) {unknown}; this signature takes {sorted(expected)}",
        )
    if len(inputs) < len(expected):
        missing = sorted(set(expected) - set(inputs) - optional)
        if missing:
            raise ServingError(Code.INVALID_ARGUMENT, f"missing input(s) {missing}")
    for input_name, value in inputs.items():
        rows = value.shape[0] if value.ndim else 1
        if rows > limits.max_instances:
            raise ServingError(
                Code.RESOURCE_EXHAUSTED,
                f"input '{input_name}' has {rows} rows; at most {limits.max_instances} per request",
            )


async def predict(
    registry: ModelRegistry,
    name: str,
    version: int | None,
    signature_name: str,
    decode: Callable[[meta_graph_pb2.SignatureDef, frozenset[str]], dict[str, np.ndarray]],
    limits: RequestLimits,
    timeout_s: float | None = None,
) -> PredictResult:
    """Runs a prediction; `decode(signature, optional_inputs)` gives the request's inputs as typed arrays."""
    signature_name = signature_name or DEFAULT_SIGNATURE
    with registry.acquire(name, version) as servable:
        signature = find_signature(servable, name, signature_name)
        optional = servable.optional_inputs(signature_name)
        inputs = decode(signature, optional)
        check_inputs(inputs, signature, optional, limits)
        future = servable.submit(signature_name, inputs)
        if not isinstance(future, concurrent.futures.Future):
            # Work on the loop itself (quick by the Servable contract): a timer could not interrupt it while
            # it runs, so it gets none; a timer per request would cost more than it is worth.
            return PredictResult(servable.version, signature_name, await future)
        future = asyncio.wrap_future(future)
        timeout = min(limits.timeout_s, timeout_s) if timeout_s else limits.timeout_s
        # A timer that cancels the future: cheaper than asyncio.wait_for, which makes a task per call.
        expired: list[bool] = []

        def expire():
            expired.append(True)
            future.cancel()

        timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            outputs = await future
        except asyncio.CancelledError as error:
            if not expired:  # the caller went away: not a timeout
                raise
            raise ServingError(
                Code.DEADLINE_EXCEEDED, f"prediction took longer than {timeout:.3f} s"
            ) from error
        finally:
            timer.cancel()
        return PredictResult(servable.version, signature_name, outputs)
