"""The related model's answers: answer_rows the same whether the searcher gives arrays or lists, and the
servable's direct TensorProto answer the same as its general one."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2

from formats import index_files
from formats.index_searcher import RelatedItemsSearcher
from serving.related_model import RelatedServable, RelatedSettings, _Request, answer_rows
from serving.tensors import array_to_proto, fill_proto, proto_to_array
from tests.serving.conftest import ITEM_IDS, publish


class ListsOnly:
    """The real searcher seen through `.related` alone: the path other searchers (tables) take."""

    def __init__(self, searcher: RelatedItemsSearcher):
        self.related = searcher.related
        self.max_k = searcher.max_k


@pytest.fixture(scope="module")
def searcher(artifacts, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("related_model"))
    return RelatedItemsSearcher(publish(artifacts.index_a, base, "pin2vec_similar", 1), max_k=20)


def test_array_and_list_paths_answer_every_request_alike(searcher):
    requests = [
        _Request([ITEM_IDS[4]], [10]),  # the common shape
        _Request([ITEM_IDS[0], "unknown", ITEM_IDS[9]], [3, 3, 3]),
        _Request([ITEM_IDS[5], ITEM_IDS[6], "unknown"], [2, 6, 4]),  # a k per row: padded to 6
        _Request([ITEM_IDS[4]], [3]),  # an id asked again in the batch, with another k
        _Request([], []),
    ]
    from_arrays = answer_rows(searcher, requests)
    from_lists = answer_rows(ListsOnly(searcher), requests)
    assert len(from_arrays) == len(from_lists) == len(requests)
    for fast, slow in zip(from_arrays, from_lists, strict=True):
        assert list(fast) == list(slow) == ["related_ids", "scores", "distances", "in_vocabulary"]
        for name in fast:
            assert fast[name].dtype == slow[name].dtype and fast[name].shape == slow[name].shape, name
            assert fast[name].tolist() == slow[name].tolist(), name
    mixed = from_arrays[2]
    assert mixed["related_ids"][0].tolist()[2:] == [b""] * 4
    assert mixed["scores"][0].tolist()[2:] == [-1.0] * 4
    assert mixed["distances"][2].tolist() == [2.0] * 6
    assert mixed["in_vocabulary"].tolist() == [True, True, False]
    expected = searcher.related([ITEM_IDS[4]], 10)[ITEM_IDS[4]]
    assert from_arrays[0]["related_ids"][0].tolist() == [index_files.encode_item_id(i) for i, _ in expected]
    np.testing.assert_array_equal(from_arrays[0]["distances"], 1.0 - from_arrays[0]["scores"])


def _inputs(**arrays) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    for name, array in arrays.items():
        request.inputs[name].CopyFrom(
            array if isinstance(array, tensor_pb2.TensorProto) else array_to_proto(array)
        )
    return request


def _general_answer(
    servable: RelatedServable, request: predict_pb2.PredictRequest
) -> predict_pb2.PredictResponse:
    async def outputs():
        inputs = {name: proto_to_array(proto, name) for name, proto in request.inputs.items()}
        return await servable.submit("serving_default", inputs)

    response = predict_pb2.PredictResponse()
    for name, value in asyncio.run(outputs()).items():
        fill_proto(response.outputs[name], value)
    return response


def _ids(*item_ids: str) -> np.ndarray:
    return np.array([index_files.encode_item_id(item_id) for item_id in item_ids], dtype=object)


@pytest.fixture(scope="module")
def servable(searcher):
    return RelatedServable(searcher.directory, 1, RelatedSettings(max_k=20, default_k=5), searcher)


def test_direct_answer_is_the_general_answer(servable):
    k_listed = array_to_proto(np.array(3, np.int32))
    k_listed.ClearField("tensor_content")
    k_listed.int_val.append(3)
    requests = {
        "k left out": _inputs(item_ids=_ids(ITEM_IDS[4])),
        "k int32 in tensor_content": _inputs(item_ids=_ids(ITEM_IDS[4]), k=np.array(7, np.int32)),
        "k int64 of shape [1]": _inputs(item_ids=_ids(ITEM_IDS[9]), k=np.array([20], np.int64)),
        "k in int_val": _inputs(item_ids=_ids(ITEM_IDS[0]), k=k_listed),
        "id not UTF-8": _inputs(item_ids=_ids(ITEM_IDS[2]), k=np.array(2, np.int32)),
        "unknown id": _inputs(item_ids=_ids("unknown"), k=np.array(4, np.int32)),
        "id of shape []": _inputs(item_ids=_ids(ITEM_IDS[6]).reshape(())),
    }
    for label, request in requests.items():
        direct = predict_pb2.PredictResponse()
        assert servable.answer_proto("serving_default", request.inputs, direct.outputs) == 1, label
        assert direct == _general_answer(servable, request), label
    unknown = predict_pb2.PredictResponse()
    servable.answer_proto("", requests["unknown id"].inputs, unknown.outputs)
    assert proto_to_array(unknown.outputs["in_vocabulary"], "v").tolist() == [False]
    assert proto_to_array(unknown.outputs["related_ids"], "r").tolist() == [[b""] * 4]
    known = predict_pb2.PredictResponse()
    servable.answer_proto("", requests["k int64 of shape [1]"].inputs, known.outputs)
    expected = servable._searcher.related([ITEM_IDS[9]], 20)[ITEM_IDS[9]]
    got = proto_to_array(known.outputs["related_ids"], "r")[0].tolist()
    assert got == [index_files.encode_item_id(i) for i, _ in expected]


def test_other_requests_are_left_to_the_general_path(servable):
    one = _ids(ITEM_IDS[4])
    requests = {
        "two ids": _inputs(item_ids=_ids(ITEM_IDS[4], ITEM_IDS[5])),
        "k of 0": _inputs(item_ids=one, k=np.array(0, np.int32)),
        "k above max_k": _inputs(item_ids=one, k=np.array(21, np.int32)),
        "k as a float": _inputs(item_ids=one, k=np.array(3.0, np.float32)),
        "a k per id, two": _inputs(item_ids=one, k=np.array([3, 4], np.int32)),
        "an unknown input": _inputs(item_ids=one, other=np.array(1, np.int32)),
        "ids as numbers": _inputs(item_ids=np.array([4], np.int64)),
        "no ids": _inputs(k=np.array(3, np.int32)),
    }
    for label, request in requests.items():
        response = predict_pb2.PredictResponse()
        names = list(request.inputs)
        assert servable.answer_proto("serving_default", request.inputs, response.outputs) is None, label
        assert not response.outputs and list(request.inputs) == names, label  # nothing written or added
    response = predict_pb2.PredictResponse()
    assert servable.answer_proto("other_signature", _inputs(item_ids=one).inputs, response.outputs) is None
