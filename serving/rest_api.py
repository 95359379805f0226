"""TF Serving's REST API as pure functions: URL paths, the predict request's two forms, the answers.

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]             model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata    signatures
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict     {"signature_name", "instances"|"inputs"}

Row form ("instances": a list, one item per row; each a value, or an object of named inputs) is answered with
"predictions" (one item per row); columnar form ("inputs": an object of named inputs, or one value) with
"outputs". See https://www.tensorflow.org/tfx/serving/api_rest.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2

from serving.errors import Code, ServingError
from serving.model_registry import VersionStatus
from serving.tensors import array_to_json, json_to_array

_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|(?P<predict>:predict))?"
)


@dataclasses.dataclass(frozen=True)
class Route:
    name: str
    version: int | None
    kind: str  # "status", "metadata" or "predict"
    label: str | None = None  # a version label (the model config's version_labels), resolved by the server


def parse_path(path: str) -> Route:
    match = _PATH.fullmatch(path)
    if match is None:
        raise ServingError(
            Code.NOT_FOUND,
            f"Malformed request: {path}; expected /v1/models/NAME[/versions/N|/labels/L][/metadata|:predict]",
        )
    version = match["version"]
    if version is not None and not (version.isascii() and version.isdigit()):
        raise ServingError(Code.INVALID_ARGUMENT, f"version must be an integer; got {version!r}")
    kind = "metadata" if match["metadata"] else "predict" if match["predict"] else "status"
    return Route(match["name"], None if version is None else int(version), kind, match["label"])


@dataclasses.dataclass
class PredictRequest:
    signature_name: str
    row_format: bool
    body: Any  # the "instances" list or the "inputs" value, decoded against a signature by `decode_inputs`

    def decode_inputs(
        self, signature: meta_graph_pb2.SignatureDef, optional: frozenset[str] = frozenset()
    ) -> dict[str, np.ndarray]:
        columns = (
            _columns(self.body, signature, optional) if self.row_format else self._named(signature, optional)
        )
        decoded = {}
        for name, value in columns.items():
            info = signature.inputs.get(name)
            if info is None:
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"unknown input '{name}'; this signature takes {sorted(signature.inputs)}",
                )
            decoded[name] = json_to_array(value, info.dtype, name)
        return decoded

    def _named(self, signature, optional) -> dict[str, Any]:
        if isinstance(self.body, dict) and not _is_b64(self.body):
            return self.body
        return {_only_input(signature, optional): self.body}


def parse_predict_request(body: Any, max_instances: int) -> PredictRequest:
    """The predict request's envelope; its values are decoded later, against the chosen signature."""
    if not isinstance(body, dict):
        raise ServingError(Code.INVALID_ARGUMENT, "request body must be a JSON object")
    unknown = sorted(set(body) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"unknown field(s) {unknown}; expected signature_name and one of instances or inputs",
        )
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise ServingError(Code.INVALID_ARGUMENT, "'signature_name' must be a string")
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(
            Code.INVALID_ARGUMENT,
            "Missing 'inputs' or 'instances' key, or both given: give exactly one",
        )
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServingError(
                Code.INVALID_ARGUMENT, "'instances' must be a non-empty list, one item per row"
            )
        if len(instances) > max_instances:
            raise ServingError(
                Code.RESOURCE_EXHAUSTED,
                f"{len(instances)} instances; at most {max_instances} per request",
            )
        return PredictRequest(signature_name, True, instances)
    return PredictRequest(signature_name, False, body["inputs"])


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _only_input(signature: meta_graph_pb2.SignatureDef, optional: frozenset[str]) -> str:
    required = sorted(set(signature.inputs) - optional)
    if len(required) != 1:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"this signature takes inputs {sorted(signature.inputs)}: name them (an object per instance, or "
            "an object of inputs)",
        )
    return required[0]


def _columns(instances: list, signature, optional) -> dict[str, list]:
    named = [isinstance(row, dict) and not _is_b64(row) for row in instances]
    if not any(named):
        return {_only_input(signature, optional): instances}
    if not all(named):
        raise ServingError(
            Code.INVALID_ARGUMENT, "instances mix objects and plain values; use one form for every row"
        )
    keys = set(instances[0])
    for row, instance in enumerate(instances):
        if set(instance) != keys:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"instance {row} has inputs {sorted(instance)} but instance 0 has {sorted(keys)}; every "
                "instance must name the same inputs",
            )
    return {key: [instance[key] for instance in instances] for key in keys}


def predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict[str, Any]:
    if not row_format:
        if len(outputs) == 1:
            return {"outputs": array_to_json(next(iter(outputs.values())))}
        return {"outputs": {name: array_to_json(value) for name, value in outputs.items()}}
    rows = {value.shape[0] if value.ndim else None for value in outputs.values()}
    if len(rows) != 1 or None in rows:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            "outputs do not share a first dimension, so they cannot be answered as rows; use 'inputs'",
        )
    columns = {name: array_to_json(value) for name, value in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    names = list(columns)
    return {
        "predictions": [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    }


def status_response(statuses: list[VersionStatus]) -> dict[str, Any]:
    """GetModelStatusResponse as TF Serving's REST API writes it."""
    return {
        "model_version_status": [
            {
                "version": str(status.version),
                "state": status.state,
                "status": {
                    "error_code": "UNKNOWN" if status.error else "OK",
                    "error_message": status.error,
                },
            }
            for status in statuses
        ]
    }


def metadata_response(
    name: str, version: int, signatures: dict[str, meta_graph_pb2.SignatureDef]
) -> dict[str, Any]:
    signature_map = {
        key: json_format.MessageToDict(value, preserving_proto_field_name=True)
        for key, value in signatures.items()
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": signature_map}},
    }
