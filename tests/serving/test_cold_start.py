"""Cold start through the real REST and gRPC servers: `related` answers an item its default source lacks
from co-occurrence, the window's coldstart table or the popular fallback, says which, and refuses an item
engaged nowhere in the window (NOT_FOUND), on both gRPC front ends."""

from __future__ import annotations

import json

import grpc
import pytest
import requests
from tensorflow_serving.apis import prediction_service_pb2_grpc

from formats import candidate_table
from serving.tensors import proto_to_array
from tests.serving.conftest import ITEM_IDS, publish, running_server
from tests.serving.test_server import _predict_request

KNOWN = ITEM_IDS[7]  # in the index: the default source (pin2vec_similar) answers it


def _tables(root):
    """cooccurrence knows `only-cooc` (outside the index); the window's coldstart table knows `rare` (under
    min_count, with one co-occurring item), `lonely` (engaged with nothing) and `only-cooc` too."""
    cooc = candidate_table.from_lists({"only-cooc": [("item-9", 3.0)]}, {"only-cooc": 4, "item-9": 9}, 5)
    engaged = {item: 1 for item in ITEM_IDS[3:20]} | {"rare": 1, "lonely": 1, "only-cooc": 4}  # UTF-8 ids
    engaged |= {"item-12": 50, "item-13": 40}  # the window's most engaged items
    lists = {"rare": [("item-5", 1.0)], "only-cooc": [("item-4", 1.0)], "item-5": [("rare", 1.0)]}
    cold = candidate_table.from_lists(lists, engaged, 5)
    paths = {}
    for name, table in (("cooccurrence", cooc), ("coldstart", cold)):
        paths[name] = candidate_table.save_table(table, str(root / name))
    return paths


@pytest.fixture(scope="module", params=["native", "python"])
def server(artifacts, tmp_path_factory, request):
    root = tmp_path_factory.mktemp("cold")
    base = str(root / "serving")
    tables = _tables(root)
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    for name, path in tables.items():
        publish(path, base, name, 1)
    with running_server(base, grpc_frontend=request.param) as running:
        yield running


def _rest(server, ids, k=3, model="related"):
    body = {"instances": [{"item_ids": i, "k": k} for i in ids]}
    return requests.post(f"{server.rest}/v1/models/{model}:predict", data=json.dumps(body), timeout=10)


def test_rest_answers_every_engaged_item_and_says_which_source_did(server):
    response = _rest(server, [KNOWN, "only-cooc", "rare", "lonely"])
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert [r["source"] for r in rows] == ["pin2vec_similar", "cooccurrence", "coldstart", "popular"]
    assert all(r["in_vocabulary"] for r in rows)
    assert rows[1]["related_ids"][0] == "item-9"  # cooccurrence comes before the coldstart table
    assert rows[2]["related_ids"] == ["item-5", "", ""]  # under min_count: its one co-occurring item
    assert rows[3]["related_ids"] == ["item-12", "item-13", "only-cooc"]  # the popular fallback


def test_rest_an_item_engaged_nowhere_is_a_clear_404(server):
    response = _rest(server, [KNOWN, "never-engaged"])
    assert response.status_code == 404
    assert "'never-engaged'" in response.json()["error"]
    assert "not engaged in the window" in response.json()["error"]


def test_rest_the_coldstart_model_is_served_on_its_own(server):
    rows = _rest(server, ["lonely", "never-engaged"], model="coldstart").json()["predictions"]
    assert [r["source"] for r in rows] == ["popular", ""]
    assert [r["in_vocabulary"] for r in rows] == [True, False]  # a single model keeps padded rows


@pytest.fixture(scope="module")
def prediction(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def test_grpc_answers_under_min_count_items_from_cooccurrence_with_their_source(prediction):
    response = prediction.Predict(_predict_request(["rare", KNOWN, "lonely"], k=2), timeout=10)
    sources = proto_to_array(response.outputs["source"], "source").tolist()
    assert sources == [b"coldstart", b"pin2vec_similar", b"popular"]
    ids = proto_to_array(response.outputs["related_ids"], "related_ids")
    assert ids[0].tolist() == [b"item-5", b""]
    assert proto_to_array(response.outputs["in_vocabulary"], "v").tolist() == [True, True, True]


@pytest.mark.parametrize("item_id", ["rare", KNOWN])
def test_grpc_one_id_gets_the_same_answer_directly_and_on_the_general_path(prediction, item_id):
    direct = prediction.Predict(_predict_request([item_id], k=3), timeout=10)
    request = _predict_request([item_id], k=3)
    request.output_filter.extend(["related_ids", "scores", "distances", "in_vocabulary", "source"])
    assert direct == prediction.Predict(request, timeout=10)


def test_grpc_an_item_engaged_nowhere_is_not_found(prediction):
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(_predict_request(["never-engaged"]), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "not engaged in the window" in error.value.details()


def test_without_a_coldstart_table_unknown_ids_keep_padded_rows(artifacts, tmp_path):
    """A serving directory pushed before cold start: no closed world, so no 404 for an unknown id."""
    base = str(tmp_path / "serving")
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    publish(_tables(tmp_path)["cooccurrence"], base, "cooccurrence", 1)
    with running_server(base, grpc_frontend="python") as running:
        rows = _rest(running, ["only-cooc", "never-engaged"]).json()["predictions"]
    assert [r["source"] for r in rows] == ["cooccurrence", ""]
    assert [r["in_vocabulary"] for r in rows] == [True, False]
