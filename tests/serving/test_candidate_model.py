"""`cooccurrence` and `blend` served like `related`, with embedding distances from the same pushed version."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from formats import candidate_table, index_files
from tests.serving.conftest import running_server

IDS = [f"i{n}" for n in range(20)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    vectors = np.random.default_rng(3).normal(size=(len(IDS), 8)).astype(np.float32)
    settings = IndexSettings()
    base = root / "serving"
    index_lib.save_index(
        index_lib.build_index(vectors, settings), IDS, vectors, str(base / "related" / "3"), settings, 1.0
    )
    lists = {"i0": [("i7", 9.0), ("i3", 4.0), ("i11", 1.0)], "i5": [("i0", 2.0)]}
    for name in ("cooccurrence", "blend"):
        table = candidate_table.from_lists(lists, {i: 1 for i in IDS}, top_n=5, meta={"source": name})
        candidate_table.save_table(table, str(base / name / "3"))
    with running_server(str(base)) as running:
        yield running, index_files.normalize_rows(vectors)


@pytest.mark.parametrize("model", ["cooccurrence", "blend"])
def test_tables_answer_with_their_scores_and_embedding_distances(served, model):
    server, unit = served
    body = {"instances": [{"item_ids": "i0", "k": 2}, {"item_ids": "zz", "k": 2}]}
    response = requests.post(f"{server.rest}/v1/models/{model}:predict", data=json.dumps(body), timeout=10)
    assert response.status_code == 200, response.text
    known, unknown = response.json()["predictions"]
    assert known["related_ids"] == ["i7", "i3"]
    assert known["scores"] == [9.0, 4.0]
    expected = [1 - float(unit[0] @ unit[7]), 1 - float(unit[0] @ unit[3])]
    np.testing.assert_allclose(known["distances"], expected, atol=1e-5)
    assert unknown["in_vocabulary"] is False and unknown["related_ids"] == ["", ""]


def test_tables_are_listed_as_models(served):
    server, _ = served
    for model in ("related", "cooccurrence", "blend"):
        status = requests.get(f"{server.rest}/v1/models/{model}", timeout=10).json()
        assert status["model_version_status"][0]["version"] == "3"
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
