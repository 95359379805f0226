"""SignatureDefs: building them for models that are not SavedModels, and reading a SavedModel's own."""

from __future__ import annotations

import os

from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

PREDICT_METHOD = "tensorflow/serving/predict"
SERVE_TAG = "serve"


def _tensor_info(name: str, dtype: str, shape: list[int]) -> meta_graph_pb2.TensorInfo:
    return meta_graph_pb2.TensorInfo(
        name=f"{name}:0",
        dtype=types_pb2.DataType.Value(dtype),
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]
        ),
    )


def signature_def(
    inputs: dict[str, tuple[str, list[int]]], outputs: dict[str, tuple[str, list[int]]]
) -> meta_graph_pb2.SignatureDef:
    """A predict SignatureDef from {name: (dtype name, shape with -1 for unknown)}."""
    signature = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
    for name, (dtype, shape) in inputs.items():
        signature.inputs[name].CopyFrom(_tensor_info(name, dtype, shape))
    for name, (dtype, shape) in outputs.items():
        signature.outputs[name].CopyFrom(_tensor_info(name, dtype, shape))
    return signature


def saved_model_signatures(export_dir: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The `serve` meta graph's signatures, read from saved_model.pb without loading the model."""
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return {
                name: signature
                for name, signature in meta_graph.signature_def.items()
                if not name.startswith("__")  # TF's internal __saved_model_init_op
            }
    raise ValueError(f"{path} has no meta graph tagged '{SERVE_TAG}'; expected a serving SavedModel")
