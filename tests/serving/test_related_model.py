"""answer_rows: the batched related-items answer, the same whether the searcher gives arrays or lists."""

from __future__ import annotations

import numpy as np
import pytest

from components.scann_indexer import index_lib
from serving.index_searcher import RelatedItemsSearcher
from serving.related_model import _Request, answer_rows
from tests.serving.conftest import ITEM_IDS, publish


class ListsOnly:
    """The real searcher seen through `.related` alone: the path other searchers (tables) take."""

    def __init__(self, searcher: RelatedItemsSearcher):
        self.related = searcher.related
        self.max_k = searcher.max_k


@pytest.fixture(scope="module")
def searcher(artifacts, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("related_model"))
    return RelatedItemsSearcher(publish(artifacts.index_a, base, "related", 1), max_k=20)


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
    assert from_arrays[0]["related_ids"][0].tolist() == [index_lib.encode_item_id(i) for i, _ in expected]
    np.testing.assert_array_equal(from_arrays[0]["distances"], 1.0 - from_arrays[0]["scores"])
