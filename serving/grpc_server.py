"""The gRPC front end: tensorflow.serving.PredictionService (Predict, GetModelMetadata) and
ModelService.GetModelStatus, on TF Serving's own generated servicers (grpc.aio), so its stubs work as is."""

from __future__ import annotations

import logging
import time

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
)

from serving.access_log import log_request
from serving.errors import Code, ServingError
from serving.model_registry import ModelRegistry
from serving.predict import DEFAULT_SIGNATURE, RequestLimits, predict
from serving.tensors import fill_proto, proto_to_array

log = logging.getLogger("pin2vec.serving")
_OK, _UNKNOWN = 0, 2  # tensorflow.error.Code
MAX_SEND_BYTES = 64 * 1024 * 1024


def _version(registry: ModelRegistry, spec: model_pb2.ModelSpec) -> int | None:
    """The version a ModelSpec asks for: its number, its label's (the model config's), or None (latest)."""
    if spec.version_label:
        return registry.label_version(spec.name, spec.version_label)
    return spec.version.value if spec.HasField("version") else None


def _spec(name: str, version: int, signature_name: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec()
    _fill_spec(spec, name, version, signature_name)
    return spec


def _fill_spec(spec: model_pb2.ModelSpec, name: str, version: int, signature_name: str = "") -> None:
    spec.name = name
    spec.version.value = version
    spec.signature_name = signature_name


def _decode(request: predict_pb2.PredictRequest):
    def decode(signature, optional):
        inputs = {}
        for name, proto in request.inputs.items():
            info = signature.inputs.get(name)
            if info is not None and not _compatible(proto.dtype, info.dtype):
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"input '{name}' has dtype {proto.dtype} but the signature expects {info.dtype}",
                )
            inputs[name] = proto_to_array(proto, name)
        return inputs

    return decode


def _compatible(given: int, expected: int) -> bool:
    integers = {3, 9}  # DT_INT32, DT_INT64: either is accepted for an integer input
    return given == expected or (given in integers and expected in integers)


class _Handler:
    """Runs one RPC: maps ServingError to its gRPC status and logs the access line."""

    def __init__(self, method: str):
        self.method = method

    async def __call__(self, context, model, work):
        started = time.perf_counter()
        try:
            response, version, rows = await work()
        except ServingError as error:
            log_request(
                "grpc",
                self.method,
                model,
                None,
                error.code.grpc_name,
                started,
                error=error.message,
                peer=context.peer(),
            )
            await context.abort(grpc.StatusCode[error.code.grpc_name], error.message)
        except Exception as error:
            log.exception("gRPC %s failed", self.method)
            log_request("grpc", self.method, model, None, "INTERNAL", started, error=str(error))
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}")
        log_request("grpc", self.method, model, version, "OK", started, rows, context.peer())
        return response


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry, limits: RequestLimits):
        self.registry = registry
        self.limits = limits

    async def Predict(self, request: predict_pb2.PredictRequest, context):
        response = self.predict_directly(request, time.perf_counter(), context.peer())
        if response is not None:
            return response

        async def work():
            spec = request.model_spec
            result = await predict(
                self.registry,
                spec.name,
                _version(self.registry, spec),
                spec.signature_name,
                _decode(request),
                self.limits,
                timeout_s=context.time_remaining(),
            )
            outputs = result.outputs
            if request.output_filter:
                unknown = sorted(set(request.output_filter) - set(outputs))
                if unknown:
                    raise ServingError(
                        Code.INVALID_ARGUMENT, f"output_filter names unknown outputs {unknown}"
                    )
                outputs = {name: outputs[name] for name in request.output_filter}
            response = predict_pb2.PredictResponse()
            _fill_spec(response.model_spec, spec.name, result.version, result.signature_name)
            response_outputs = response.outputs
            for name, value in outputs.items():
                fill_proto(response_outputs[name], value)
            rows = next(iter(outputs.values())).shape[0] if outputs else 0
            return response, result.version, rows

        return await _Handler("Predict")(context, request.model_spec.name, work)

    def predict_directly(self, request: predict_pb2.PredictRequest, started: float, peer: str):
        """The response, access-logged, when the servable answers this request straight from its
        TensorProtos (`answer_proto`); None otherwise: `Predict`'s general path answers it then."""
        try:
            answered = self._answer_directly(request)
        except Exception:  # the general path meets the same failure, and reports and logs it
            return None
        if answered is None:
            return None
        response, version = answered
        log_request("grpc", "Predict", request.model_spec.name, version, "OK", started, 1, peer)
        return response

    def _answer_directly(self, request: predict_pb2.PredictRequest):
        """(response, version) when the servable answers this request straight from its TensorProtos
        (`answer_proto`); None otherwise, including for any request in error, which `predict` then reports."""
        spec = request.model_spec
        if spec.version_label or request.output_filter:
            return None
        try:
            lease = self.registry.acquire(spec.name, spec.version.value if spec.HasField("version") else None)
        except ServingError:
            return None
        with lease as servable:
            answer_proto = getattr(servable, "answer_proto", None)
            if answer_proto is None:
                return None
            response = predict_pb2.PredictResponse()
            if answer_proto(spec.signature_name, request.inputs, response.outputs) is None:
                return None
            signature_name = spec.signature_name or DEFAULT_SIGNATURE
            _fill_spec(response.model_spec, spec.name, servable.version, signature_name)
            return response, servable.version

    async def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):
        async def work():
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise ServingError(
                    Code.INVALID_ARGUMENT, f"metadata_field must be ['signature_def']; got {fields}"
                )
            spec = request.model_spec
            with self.registry.acquire(spec.name, _version(self.registry, spec)) as servable:
                signatures = get_model_metadata_pb2.SignatureDefMap()
                for name, signature in servable.signature_defs.items():
                    signatures.signature_def[name].CopyFrom(signature)
                response = get_model_metadata_pb2.GetModelMetadataResponse(
                    model_spec=_spec(spec.name, servable.version)
                )
                response.metadata["signature_def"].Pack(signatures)
                return response, servable.version, None

        return await _Handler("GetModelMetadata")(context, request.model_spec.name, work)

    async def Classify(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "only Predict and GetModelMetadata are served")

    Regress = MultiInference = Classify


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    async def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):
        async def work():
            spec = request.model_spec
            statuses = self.registry.status(spec.name, _version(self.registry, spec))
            state = get_model_status_pb2.ModelVersionStatus.State
            response = get_model_status_pb2.GetModelStatusResponse(
                model_version_status=[
                    get_model_status_pb2.ModelVersionStatus(
                        version=status.version,
                        state=state.Value(status.state),
                        status=status_pb2.StatusProto(
                            error_code=_UNKNOWN if status.error else _OK, error_message=status.error
                        ),
                    )
                    for status in statuses
                ]
            )
            return response, None, None

        return await _Handler("GetModelStatus")(context, request.model_spec.name, work)

    async def HandleReloadConfigRequest(self, request, context):
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "models come from the polled --model-base directory"
        )


def build_server(
    registry: ModelRegistry, limits: RequestLimits, address: str, reuse_port: bool = False
) -> tuple[grpc.aio.Server, int]:
    """An unstarted grpc.aio server bound to `address` ("host:port"; port 0 picks one) and its port.

    `reuse_port`: share the port with this server's worker processes (SO_REUSEPORT). Off by default, so a
    port another server holds is an error here rather than a silent split of its traffic (gRPC's own default
    is on)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limits.max_body_bytes),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.so_reuseport", int(reuse_port)),
        ]
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(registry, limits), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(registry), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind the gRPC server to {address}")
    return server, port
