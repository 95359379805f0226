"""Tensors in and out of the wire formats TF Serving uses: `TensorProto` (gRPC) and JSON values (REST).

Pure numpy + protobuf, no TensorFlow runtime: strings are numpy object arrays of `bytes`.
"""

from __future__ import annotations

import base64
import math
import sys
from typing import Any

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.errors import Code, ServingError

_NUMPY_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: object,
}
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}
_TF_DTYPES = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.float64): types_pb2.DT_DOUBLE}
_TF_DTYPES.update({np.dtype(np.int32): types_pb2.DT_INT32, np.dtype(np.int64): types_pb2.DT_INT64})
_TF_DTYPES.update({np.dtype(np.bool_): types_pb2.DT_BOOL, np.dtype(object): types_pb2.DT_STRING})


def dtype_name(dtype: int) -> str:
    return types_pb2.DataType.Name(dtype)


def supported(dtype: int) -> bool:
    return dtype in _NUMPY_DTYPES


def proto_to_array(proto: tensor_pb2.TensorProto, name: str) -> np.ndarray:
    """A request's TensorProto as a numpy array (strings: object array of bytes)."""
    if proto.dtype not in _NUMPY_DTYPES:
        raise ServingError(
            Code.INVALID_ARGUMENT, f"input '{name}' has dtype {dtype_name(proto.dtype)}; not supported here"
        )
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    size = math.prod(shape)
    if proto.dtype == types_pb2.DT_STRING:
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
    elif proto.tensor_content:
        values = np.frombuffer(proto.tensor_content, dtype=_NUMPY_DTYPES[proto.dtype])
    else:
        values = np.asarray(getattr(proto, _VALUE_FIELDS[proto.dtype]), dtype=_NUMPY_DTYPES[proto.dtype])
    if values.size == 1 and size != 1:  # TF's shorthand: one value fills the whole tensor
        values = np.full(size, values[0], dtype=values.dtype)
    if values.size != size:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"input '{name}' has {values.size} values for shape {list(shape)} ({size} expected)",
        )
    return values.reshape(shape)


def one_value(proto: tensor_pb2.TensorProto, dtypes: frozenset[int]) -> Any | None:
    """The value of a one-element tensor (shape [] or [1]) of one of `dtypes`, read without numpy; None
    for any other tensor, which the caller then decodes in full (`proto_to_array`: that also names what is
    wrong with a bad one)."""
    if proto.dtype not in dtypes:
        return None
    dims = proto.tensor_shape.dim
    if len(dims) > 1 or (dims and dims[0].size != 1):
        return None
    if proto.tensor_content:
        content = proto.tensor_content
        integer = proto.dtype in (types_pb2.DT_INT32, types_pb2.DT_INT64)
        if not integer or len(content) != np.dtype(_NUMPY_DTYPES[proto.dtype]).itemsize:
            return None
        return int.from_bytes(content, sys.byteorder, signed=True)  # as np.frombuffer reads it
    values = getattr(proto, _VALUE_FIELDS[proto.dtype])
    return values[0] if len(values) == 1 else None


def array_to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A response TensorProto; numbers go in `tensor_content`, as TF itself writes them."""
    proto = tensor_pb2.TensorProto()
    fill_proto(proto, array)
    return proto


def fill_proto(proto: tensor_pb2.TensorProto, array: np.ndarray) -> None:
    """Writes `array` into an empty TensorProto in place (e.g. one of a response's `outputs`), which
    spares building a message and copying it in."""
    array = np.asarray(array)
    dtype = _TF_DTYPES.get(array.dtype)
    if dtype is None:
        raise ServingError(Code.INTERNAL, f"cannot encode an output of numpy dtype {array.dtype}")
    proto.dtype = dtype
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add().size = size
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(array.ravel().tolist())
    else:
        proto.tensor_content = array.tobytes()  # C order, whatever the array's own layout


def json_to_array(value: Any, dtype: int, name: str) -> np.ndarray:
    """A REST input (nested lists, scalars; strings as text or {"b64": ...}) as a numpy array."""
    if dtype not in _NUMPY_DTYPES:
        raise ServingError(
            Code.INVALID_ARGUMENT, f"input '{name}' has dtype {dtype_name(dtype)}; not supported here"
        )
    if dtype == types_pb2.DT_STRING:
        return _strings(value, name)
    try:
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind in "USV":
            raise ValueError("not numbers")
        if dtype == types_pb2.DT_BOOL and array.dtype != np.bool_:
            raise ValueError("not true/false")
        if dtype in (types_pb2.DT_INT32, types_pb2.DT_INT64):
            if array.dtype.kind not in "iub":
                raise ValueError("not integers")
            bounds = np.iinfo(_NUMPY_DTYPES[dtype])
            if array.size and (array.min() < bounds.min or array.max() > bounds.max):  # astype would wrap
                raise ValueError(
                    f"{array.max() if array.max() > bounds.max else array.min()} is out of range"
                )
        return array.astype(_NUMPY_DTYPES[dtype])
    except (ValueError, TypeError, OverflowError) as error:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"input '{name}' must be a (nested) list of {dtype_name(dtype)} values of one shape; "
            f"{error}: {str(value)[:100]}",
        ) from error


def _strings(value: Any, name: str) -> np.ndarray:
    def decode(item):
        if isinstance(item, str):
            return item.encode("utf-8")
        if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
            try:
                return base64.b64decode(item["b64"], validate=True)
            except ValueError as error:
                raise ServingError(
                    Code.INVALID_ARGUMENT, f"input '{name}' has invalid base64: {item['b64'][:50]!r}"
                ) from error
        if isinstance(item, list):
            return [decode(inner) for inner in item]
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"input '{name}' must hold strings (or {{\"b64\": ...}}); got {type(item).__name__} "
            f"{str(item)[:50]}",
        )

    decoded = decode(value)
    shape = _shape(decoded, name)
    array = np.empty(shape, dtype=object)
    if shape:
        array[...] = _fill(decoded, shape)
    else:
        array[()] = decoded
    return array


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        return ()
    inner = {_shape(item, name) for item in value}
    if len(inner) > 1:
        raise ServingError(Code.INVALID_ARGUMENT, f"input '{name}' is ragged; expected one shape per row")
    return (len(value), *(inner.pop() if inner else ()))


def _fill(value: list, shape: tuple[int, ...]) -> np.ndarray:
    """Nested lists of bytes -> object array, without numpy splitting the bytes into characters."""
    flat: list = value
    for _ in shape[1:]:
        flat = [item for row in flat for item in row]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(shape)


def array_to_json(array: np.ndarray) -> Any:
    """An output as JSON values; strings as text, or {"b64": ...} when not UTF-8."""
    array = np.asarray(array)
    if array.dtype != object:
        return array.tolist()

    def encode(item):
        if isinstance(item, list):
            return [encode(inner) for inner in item]
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(item).decode("ascii")}

    return encode(array.tolist())
