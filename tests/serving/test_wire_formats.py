"""TensorProto and REST JSON conversions, and the REST request/response forms, as pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from serving import rest_api
from serving.errors import Code, ServingError
from serving.related_model import related_signature
from serving.tensors import array_to_json, array_to_proto, json_to_array, one_value, proto_to_array


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([1, -2], dtype=np.int64),
        np.array(7, dtype=np.int32),
        np.array([True, False]),
        np.array([[b"a", b"\xff"], [b"", b"c d"]], dtype=object),
    ],
)
def test_tensor_proto_round_trip(array):
    back = proto_to_array(array_to_proto(array), "x")
    assert back.shape == array.shape and back.dtype == array.dtype
    assert back.tolist() == array.tolist()


def test_proto_shorthand_and_size_mismatch():
    proto = array_to_proto(np.array([5], dtype=np.int32))
    proto.tensor_shape.dim[0].size = 3
    proto.int_val.append(5)  # TF's shorthand: one value for every element
    proto.tensor_content = b""
    assert proto_to_array(proto, "k").tolist() == [5, 5, 5]
    proto.int_val.append(6)
    with pytest.raises(ServingError, match=r"2 values for shape \[3\]"):
        proto_to_array(proto, "k")


def test_one_value_reads_what_proto_to_array_reads_for_one_element_tensors():
    integers = frozenset({types_pb2.DT_INT32, types_pb2.DT_INT64})
    for array in (np.array(7, np.int32), np.array([-3], np.int64), np.array([2**40], np.int64)):
        proto = array_to_proto(array)  # numbers go in tensor_content
        assert proto.tensor_content and one_value(proto, integers) == proto_to_array(proto, "k").item()
    proto = array_to_proto(np.array(5, np.int32))
    proto.ClearField("tensor_content")
    proto.int_val.append(5)  # the value fields, as other clients write them
    assert one_value(proto, integers) == 5
    assert (
        one_value(array_to_proto(np.array([b"id"], dtype=object)), frozenset({types_pb2.DT_STRING})) == b"id"
    )
    for other in (
        np.array([1, 2], np.int32),  # two values
        np.array([[1]], np.int32),  # shape [1, 1]
        np.array(1.0, np.float32),  # a dtype not asked for
        np.array([], np.int32),
    ):
        assert one_value(array_to_proto(other), integers) is None, other


def test_json_strings_text_b64_and_errors():
    assert json_to_array(["café", {"b64": "/w=="}], types_pb2.DT_STRING, "ids").tolist() == [
        "café".encode(),
        b"\xff",
    ]
    assert json_to_array([["a", "b"]], types_pb2.DT_STRING, "ids").shape == (1, 2)
    with pytest.raises(ServingError, match="ragged"):
        json_to_array([["a"], ["b", "c"]], types_pb2.DT_STRING, "ids")
    with pytest.raises(ServingError, match="must hold strings"):
        json_to_array(["a", 3], types_pb2.DT_STRING, "ids")
    with pytest.raises(ServingError, match="invalid base64"):
        json_to_array([{"b64": "***"}], types_pb2.DT_STRING, "ids")
    with pytest.raises(ServingError, match="DT_INT32"):
        json_to_array([1.5], types_pb2.DT_INT32, "k")
    with pytest.raises(ServingError, match="DT_BOOL"):
        json_to_array([1], types_pb2.DT_BOOL, "flag")
    assert array_to_json(np.array([b"ok", b"\xff"], dtype=object)) == ["ok", {"b64": "/w=="}]


def test_parse_path():
    assert rest_api.parse_path("/v1/models/related") == rest_api.Route("related", None, "status")
    assert rest_api.parse_path("/v1/models/related/versions/3/metadata") == rest_api.Route(
        "related", 3, "metadata"
    )
    assert rest_api.parse_path("/v1/models/m:predict") == rest_api.Route("m", None, "predict")
    with pytest.raises(ServingError) as error:
        rest_api.parse_path("/v1/models/m/versions/x:predict")
    assert error.value.code == Code.INVALID_ARGUMENT
    with pytest.raises(ServingError) as error:
        rest_api.parse_path("/v2/models/m")
    assert error.value.code == Code.NOT_FOUND


def test_row_and_columnar_forms_decode_to_the_same_inputs():
    signature = related_signature()
    optional = frozenset({"k"})
    rows = rest_api.parse_predict_request(
        {"instances": [{"item_ids": "a", "k": 2}, {"item_ids": "b", "k": 3}]}, 10
    )
    columns = rest_api.parse_predict_request({"inputs": {"item_ids": ["a", "b"], "k": [2, 3]}}, 10)
    for request in (rows, columns):
        inputs = request.decode_inputs(signature, optional)
        assert inputs["item_ids"].tolist() == [b"a", b"b"] and inputs["k"].tolist() == [2, 3]
        assert inputs["k"].dtype == np.int32
    bare = rest_api.parse_predict_request({"instances": ["a", "b"]}, 10).decode_inputs(signature, optional)
    assert list(bare) == ["item_ids"]
    with pytest.raises(ServingError, match="every instance must name the same inputs"):
        rest_api.parse_predict_request(
            {"instances": [{"item_ids": "a"}, {"item_ids": "b", "k": 1}]}, 10
        ).decode_inputs(signature, optional)
    with pytest.raises(ServingError, match="mix objects and plain values"):
        rest_api.parse_predict_request({"instances": [{"item_ids": "a"}, "b"]}, 10).decode_inputs(
            signature, optional
        )
    with pytest.raises(ServingError, match="at most 1 per request"):
        rest_api.parse_predict_request({"instances": ["a", "b"]}, 1)
    with pytest.raises(ServingError, match="unknown field"):
        rest_api.parse_predict_request({"instance": ["a"]}, 1)


def test_predict_response_forms():
    outputs = {"ids": np.array([[b"x"], [b"y"]], dtype=object), "known": np.array([True, False])}
    assert rest_api.predict_response(outputs, row_format=True) == {
        "predictions": [{"ids": ["x"], "known": True}, {"ids": ["y"], "known": False}]
    }
    assert rest_api.predict_response(outputs, row_format=False) == {
        "outputs": {"ids": [["x"], ["y"]], "known": [True, False]}
    }
    assert rest_api.predict_response({"v": np.array([1.5])}, row_format=True) == {"predictions": [1.5]}
