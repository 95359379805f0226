"""`cooccurrence` and `blend` served like `related`, with embedding distances from the same pushed version."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from formats import candidate_table, evaluation_result, index_files, serving_layout
from tests.serving.conftest import running_server, wait_until

IDS = [f"i{n}" for n in range(20)]


def _push_index_and_tables(base) -> np.ndarray:
    """Version 3 of pin2vec_similar (seeded vectors), cooccurrence and blend (the same lists); the vectors."""
    vectors = np.random.default_rng(3).normal(size=(len(IDS), 8)).astype(np.float32)
    settings = IndexSettings()
    index_lib.save_index(
        index_lib.build_index(vectors, settings),
        IDS,
        vectors,
        str(base / "pin2vec_similar" / "3"),
        settings,
        1.0,
    )
    lists = {"i0": [("i7", 9.0), ("i3", 4.0), ("i11", 1.0)], "i5": [("i0", 2.0)]}
    for name in ("cooccurrence", "blend"):
        table = candidate_table.from_lists(lists, {i: 1 for i in IDS}, top_n=5, meta={"source": name})
        candidate_table.save_table(table, str(base / name / "3"))
    return vectors


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("tables") / "serving"
    vectors = _push_index_and_tables(base)
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
    for model in ("pin2vec_similar", "cooccurrence", "blend"):
        status = requests.get(f"{server.rest}/v1/models/{model}", timeout=10).json()
        assert status["model_version_status"][0]["version"] == "3"
        assert status["model_version_status"][0]["state"] == "AVAILABLE"


def _served_default(base, version: int, source: str) -> None:
    """An evaluation version whose served_sources.json names `source`, as the RelatedPusher writes it."""
    serving_layout.publish_directory(
        str(base / "no-evaluation"),
        str(base / "evaluation"),
        version,
        extra_json={
            evaluation_result.EVALUATION_FILE: {},
            serving_layout.SERVED_SOURCES_FILE: {"default_source": source},
        },
    )


def test_related_answers_from_the_pushed_default_source_and_follows_each_push(tmp_path):
    base = tmp_path / "serving"
    _push_index_and_tables(base)
    (base / "no-evaluation").mkdir()

    def related_i0(version=""):
        path = f"/versions/{version}" if version else ""
        body = json.dumps({"instances": [{"item_ids": "i0", "k": 2}]})
        response = requests.post(f"{server.rest}/v1/models/related{path}:predict", data=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0]

    with running_server(str(base)) as server:
        # No evaluation pushed: the index, as `pin2vec related` would answer.
        assert related_i0()["scores"] != [9.0, 4.0]
        _served_default(base, 3, "blend")
        wait_until(lambda: related_i0()["scores"] == [9.0, 4.0])
        assert related_i0(3)["related_ids"] == ["i7", "i3"]  # a version asked of `related` is blend's
        status = requests.get(f"{server.rest}/v1/models/related", timeout=10).json()
        assert status["model_version_status"][0]["version"] == "3"
        similar = requests.post(
            f"{server.rest}/v1/models/pin2vec_similar:predict", data='{"instances": ["i0"]}', timeout=10
        )
        assert similar.json()["predictions"][0]["scores"] != [9.0, 4.0]  # each source stays addressable
        # A later push whose default is a source that was not pushed: the index again, never an error.
        _served_default(base, 4, "board")
        wait_until(lambda: related_i0()["scores"] != [9.0, 4.0])
