"""The real server on loopback ports, called with real HTTP and the tensorflow-serving-api gRPC stubs."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
import requests
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from formats import index_files
from serving.tensors import array_to_proto, proto_to_array
from tests.serving.conftest import ITEM_IDS, publish, running_server


@pytest.fixture(scope="module", params=["native", "python"])
def server(artifacts, tmp_path_factory, request):
    """The server on each gRPC front end: the C++ transport (the default where built) and grpc.aio."""
    base = str(tmp_path_factory.mktemp("serving"))
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    publish(artifacts.index_b, base, "pin2vec_similar", 2)
    publish(artifacts.embedding, base, "embedding", 7)
    with running_server(base, grpc_frontend=request.param) as running:
        assert running.grpc_frontend == request.param
        yield running


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(server.grpc_target)
    yield (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )
    channel.close()


def _exact(vectors, row, k):
    order = np.argsort(-(vectors @ vectors[row]), kind="stable")
    return [ITEM_IDS[i] for i in order if i != row][:k]


def _post(server, path, body):
    return requests.post(f"{server.rest}{path}", data=json.dumps(body), timeout=10)


# -- REST ---------------------------------------------------------------------------------------------------


def test_rest_status_lists_loaded_versions(server):
    response = requests.get(f"{server.rest}/v1/models/related", timeout=10)
    assert response.status_code == 200
    statuses = response.json()["model_version_status"]
    assert [(s["version"], s["state"], s["status"]["error_code"]) for s in statuses] == [
        ("2", "AVAILABLE", "OK"),
        ("1", "AVAILABLE", "OK"),
    ]
    one = requests.get(f"{server.rest}/v1/models/embedding/versions/7", timeout=10).json()
    assert one["model_version_status"][0]["version"] == "7"
    missing = requests.get(f"{server.rest}/v1/models/related/versions/5", timeout=10)
    assert missing.status_code == 404 and "version 5" in missing.json()["error"]


def test_rest_metadata_describes_the_signatures(server):
    related = requests.get(f"{server.rest}/v1/models/related/metadata", timeout=10).json()
    assert related["model_spec"] == {"name": "related", "signature_name": "", "version": "2"}
    signature = related["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["item_ids"]["dtype"] == "DT_STRING"
    assert set(signature["outputs"]) == {"related_ids", "scores", "distances", "in_vocabulary", "source"}
    assert signature["outputs"]["source"]["dtype"] == "DT_STRING"
    embedding = requests.get(f"{server.rest}/v1/models/embedding/versions/7/metadata", timeout=10).json()
    outputs = embedding["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
    assert outputs["embedding"]["dtype"] == "DT_FLOAT" and outputs["in_vocabulary"]["dtype"] == "DT_BOOL"


def test_rest_row_form_answers_related_items_per_instance(server, artifacts):
    response = _post(server, "/v1/models/related:predict", {"instances": [ITEM_IDS[5], "nope", ITEM_IDS[0]]})
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert len(rows) == 3
    assert rows[0]["related_ids"] == _exact(artifacts.vectors_b, 5, 10)  # latest version: index_b
    assert rows[0]["in_vocabulary"] is True
    np.testing.assert_allclose(rows[0]["distances"], 1 - np.asarray(rows[0]["scores"]), atol=1e-6)
    assert rows[1] == {
        "related_ids": [""] * 10,
        "scores": [-1.0] * 10,
        "distances": [2.0] * 10,
        "in_vocabulary": False,
        "source": "",  # no coldstart table here: an unknown id keeps its padded row
    }
    assert rows[0]["source"] == "pin2vec_similar"
    assert rows[2]["related_ids"] == _exact(artifacts.vectors_b, 0, 10)  # "café" round-trips as UTF-8


def test_rest_row_form_with_named_inputs_and_k_per_instance(server, artifacts):
    body = {"instances": [{"item_ids": ITEM_IDS[3], "k": 2}, {"item_ids": ITEM_IDS[4], "k": 4}]}
    rows = _post(server, "/v1/models/related/versions/1:predict", body).json()["predictions"]
    assert rows[0]["related_ids"][:2] == _exact(artifacts.vectors_a, 3, 2)  # pinned version 1: index_a
    assert rows[0]["related_ids"][2:] == ["", ""]  # padded to the request's largest k
    assert rows[1]["related_ids"] == _exact(artifacts.vectors_a, 4, 4)


def test_rest_columnar_form_answers_outputs(server, artifacts):
    body = {"signature_name": "serving_default", "inputs": {"item_ids": [ITEM_IDS[9], "x"], "k": 3}}
    outputs = _post(server, "/v1/models/related:predict", body).json()["outputs"]
    assert outputs["related_ids"][0] == _exact(artifacts.vectors_b, 9, 3)
    assert outputs["in_vocabulary"] == [True, False]
    not_utf8 = _post(server, "/v1/models/related:predict", {"inputs": [{"b64": "/y1ub3QtdXRmOA=="}]})
    assert not_utf8.json()["outputs"]["in_vocabulary"] == [True]


def test_rest_embedding_model_serves_vectors(server, artifacts):
    body = {"instances": [ITEM_IDS[1], "unknown-id"]}
    rows = _post(server, "/v1/models/embedding:predict", body).json()["predictions"]
    assert rows[1]["in_vocabulary"] is False and rows[0]["in_vocabulary"] is True
    np.testing.assert_allclose(rows[0]["embedding"], artifacts.vectors_a[1], rtol=1e-5)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/models/nope:predict", {"instances": ["a"]}, 404, "model 'nope'"),
        ("/v1/models/related/versions/3:predict", {"instances": ["a"]}, 404, "Specific(related, 3)"),
        ("/v1/models/related:predict", {"instances": ["a"], "signature_name": "x"}, 400, "not found"),
        ("/v1/models/related:predict", {"inputs": {"item_ids": ["a"], "k": 0}}, 400, "in [1, 50]"),
        ("/v1/models/related:predict", {"inputs": {"item_ids": ["a"], "k": 51}}, 400, "in [1, 50]"),
        (
            "/v1/models/related:predict",
            {"inputs": {"item_ids": ["a"], "k": 10**10}},
            400,
            "10000000000 is out of range",
        ),
        ("/v1/models/related:predict", {"inputs": {"item_ids": ["a"], "k": "3"}}, 400, "'k'"),
        ("/v1/models/related:predict", {"inputs": {"item_ids": [1, 2]}}, 400, "strings"),
        ("/v1/models/related:predict", {"inputs": {"ids": ["a"]}}, 400, "unknown input"),
        ("/v1/models/related:predict", {"instances": []}, 400, "non-empty"),
        ("/v1/models/related:predict", {"instances": ["a"], "inputs": ["a"]}, 400, "exactly one"),
        ("/v1/models/related:predict", {"instances": ["a"] * 65}, 413, "at most 64"),
        ("/v1/models/related:predict", [1], 400, "JSON object"),
        ("/v1/models/related:explain", {"instances": ["a"]}, 404, "Malformed"),
    ],
)
def test_rest_errors_are_json_with_the_right_status(server, path, body, status, message):
    response = _post(server, path, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_rest_refuses_bodies_over_the_limit_and_bad_json(server):
    big = requests.post(
        f"{server.rest}/v1/models/related:predict",
        data=b'{"instances": ["' + b"x" * 70_000 + b'"]}',
        timeout=10,
    )
    assert big.status_code == 413 and "limit" in big.json()["error"]
    bad = requests.post(f"{server.rest}/v1/models/related:predict", data=b"{not json", timeout=10)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    wrong_method = requests.get(f"{server.rest}/v1/models/related:predict", timeout=10)
    assert wrong_method.status_code == 400 and "POST" in wrong_method.json()["error"]


# -- gRPC ---------------------------------------------------------------------------------------------------


def _predict_request(ids, k=None, version=None, model="related"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["item_ids"].CopyFrom(
        array_to_proto(np.array([index_files.encode_item_id(i) for i in ids], dtype=object))
    )
    if k is not None:
        request.inputs["k"].CopyFrom(array_to_proto(np.array(k, dtype=np.int32)))
    return request


def test_grpc_predict_with_the_stock_stub(stubs, artifacts):
    prediction, _ = stubs
    response = prediction.Predict(_predict_request([ITEM_IDS[7], "nope"], k=5), timeout=10)
    assert response.model_spec.name == "related" and response.model_spec.version.value == 2
    ids = proto_to_array(response.outputs["related_ids"], "related_ids")
    assert ids.shape == (2, 5)
    assert [i.decode() for i in ids[0]] == _exact(artifacts.vectors_b, 7, 5)
    assert proto_to_array(response.outputs["in_vocabulary"], "in_vocabulary").tolist() == [True, False]
    scores = proto_to_array(response.outputs["scores"], "scores")
    assert scores.dtype == np.float32 and np.all(np.diff(scores[0]) <= 1e-6)


def test_grpc_version_pinning_and_output_filter(stubs, artifacts):
    prediction, _ = stubs
    request = _predict_request([ITEM_IDS[7]], k=3, version=1)
    request.output_filter.append("related_ids")
    response = prediction.Predict(request, timeout=10)
    assert response.model_spec.version.value == 1 and list(response.outputs) == ["related_ids"]
    ids = proto_to_array(response.outputs["related_ids"], "related_ids")
    assert [i.decode() for i in ids[0]] == _exact(artifacts.vectors_a, 7, 3)


def test_grpc_embedding_predict(stubs, artifacts):
    prediction, _ = stubs
    response = prediction.Predict(_predict_request([ITEM_IDS[2]], model="embedding"), timeout=10)
    vectors = proto_to_array(response.outputs["embedding"], "embedding")
    np.testing.assert_allclose(vectors[0], artifacts.vectors_a[2], rtol=1e-5)


def test_grpc_metadata_and_status(stubs):
    prediction, models = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "related"
    response = prediction.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def["serving_default"].inputs) == {"item_ids", "k"}
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "embedding"
    status = models.GetModelStatus(status_request, timeout=10)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (7, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (_predict_request(["a"], model="nope"), grpc.StatusCode.NOT_FOUND, "model 'nope'"),
        (_predict_request(["a"], version=9), grpc.StatusCode.NOT_FOUND, "Specific(related, 9)"),
        (_predict_request(["a"], k=500), grpc.StatusCode.INVALID_ARGUMENT, "in [1, 50]"),
        (_predict_request(["a"] * 65), grpc.StatusCode.RESOURCE_EXHAUSTED, "at most 64"),
    ],
)
def test_grpc_errors_carry_tf_serving_status_codes(stubs, request_, code, message):
    prediction, _ = stubs
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(request_, timeout=10)
    assert error.value.code() == code and message in error.value.details()


def test_grpc_refuses_messages_over_the_limit(stubs):
    prediction, _ = stubs
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(_predict_request(["x" * 70_000]), timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unknown_ids_never_fail_the_request(stubs):
    prediction, _ = stubs
    response = prediction.Predict(_predict_request(["", "\u2603", "item-99999"], k=1), timeout=10)
    assert proto_to_array(response.outputs["in_vocabulary"], "v").tolist() == [False, False, False]
    assert index_files.decode_item_id(b"") == ""


@pytest.mark.parametrize("item_id", [ITEM_IDS[7], ITEM_IDS[2], "nope"])
@pytest.mark.parametrize("k", [None, 4])
def test_grpc_one_id_answers_as_the_general_path_does(stubs, item_id, k):
    """One id with one k is answered from its TensorProtos directly; an output_filter naming every output
    sends the same request down the general path: both answers must be the same message."""
    prediction, _ = stubs
    direct = prediction.Predict(_predict_request([item_id], k=k), timeout=10)
    request = _predict_request([item_id], k=k)
    request.output_filter.extend(["related_ids", "scores", "distances", "in_vocabulary", "source"])
    general = prediction.Predict(request, timeout=10)
    assert direct == general
    assert direct.model_spec.version.value == 2
    assert len(direct.outputs["related_ids"].string_val) == (k or 10)


def test_the_standard_library_event_loop_serves_too(artifacts, tmp_path):
    base = str(tmp_path)
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    with running_server(base, event_loop="asyncio") as running:
        body = {"instances": [ITEM_IDS[7]]}
        answer = _post(running, "/v1/models/related:predict", body).json()
        assert answer["predictions"][0]["related_ids"] == _exact(artifacts.vectors_a, 7, 10)
        with grpc.insecure_channel(running.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(_predict_request([ITEM_IDS[7]], k=3), timeout=10)
        ids = proto_to_array(response.outputs["related_ids"], "related_ids")
        assert [i.decode() for i in ids[0]] == _exact(artifacts.vectors_a, 7, 3)
