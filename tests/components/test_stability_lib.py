"""Neighbour stability on hand-made lists: the metric, its array form, the comparison with what is served."""

import json

import numpy as np
import pytest

from components.related_evaluator import catalogue_lib, stability_lib
from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from formats import candidate_table, push_records, serving_layout


@pytest.mark.parametrize(
    "served, candidate, expected",
    [
        (list("abcdefghij"), list("abcdefghij"), 1.0),  # identical
        (list("abcdefghij"), list("jihgfedcba"), 1.0),  # reordered: the same items, sets compare
        (list("abcdefghij"), list("klmnopqrst"), 0.0),  # disjoint
        (list("abcdefghij"), list("abcdeklmno"), 0.5),
        (list("abc"), list("abcdefghij"), 1.0),  # a short list judged on what it shows: all 3 survive
        (list("abc"), list("axyzuvwklm"), 1 / 3),
        (list("abcdefghijXYZ"), list("abcdefghijKLM"), 1.0),  # only the first k count
        (list("abcdefghijkl"), list("cdefghijklab"), 0.8),  # k and l are past the first 10 of served
        ([], list("abc"), None),  # nothing to compare: not averaged
        (list("abc"), [], None),
        ([], [], None),
    ],
)
def test_overlap_at_k_on_hand_made_lists(served, candidate, expected):
    value = stability_lib.overlap_at_k(served, candidate, k=10)
    assert value == (None if expected is None else pytest.approx(expected))


def test_overlap_at_k_with_a_small_k():
    assert stability_lib.overlap_at_k([1, 2, 3], [3, 4, 5], k=2) == 0.0
    assert stability_lib.overlap_at_k([1, 2, 3], [2, 1, 5], k=2) == 1.0


def test_clean_rows_drops_the_item_itself_and_padding_and_keeps_order():
    rows = np.array([[0, -1, 3, 2, 5], [-1, -1, -1, -1, -1], [4, 1, 0, -2, 3]])
    cleaned = stability_lib.clean_rows(rows, np.array([0, 1, 2]), k=3)
    assert cleaned.tolist() == [[3, 2, 5], [-1, -1, -1], [4, 1, 0]]


def test_overlap_rows_matches_the_list_definition_on_random_lists():
    rng = np.random.default_rng(3)
    served, candidate, expected = [], [], []
    for _ in range(200):
        a = rng.permutation(30)[: rng.integers(0, 13)].tolist()
        b = rng.permutation(30)[: rng.integers(0, 13)].tolist()
        served.append(a[:10] + [-1] * (10 - len(a[:10])))
        candidate.append(b[:10] + [-1] * (10 - len(b[:10])))
        expected.append(stability_lib.overlap_at_k(a, b, k=10))
    got = stability_lib.overlap_rows(np.array(served), np.array(candidate), k=10)
    for value, want in zip(got.tolist(), expected, strict=True):
        assert (np.isnan(value) and want is None) or value == pytest.approx(want)


def test_outside_ids_count_in_the_length_but_are_never_shared():
    # -2: a served neighbour the candidate's catalogue lacks (ServedLists.OUTSIDE)
    got = stability_lib.overlap_rows(np.array([[-2, -2, 1, 2]]), np.array([[1, 3, 4, 5]]), k=4)
    assert got.tolist() == [0.25]


def test_summarize_by_bucket_leaves_empty_lists_out():
    overlaps = np.array([1.0, 0.5, np.nan, 0.0, 0.25])
    buckets = np.array([0, 0, 1, 2, 2])
    summary = stability_lib.summarize(overlaps, buckets)
    assert summary["overlap_at_10"] == pytest.approx(1.75 / 4)
    assert summary["items"] == 4 and summary["empty_lists"] == 1
    assert summary["buckets"]["head"] == {"overlap_at_10": 0.75, "items": 2}
    assert summary["buckets"]["torso"] == {"overlap_at_10": None, "items": 0}
    assert summary["buckets"]["tail"]["overlap_at_10"] == pytest.approx(0.125)


def test_summarize_nothing():
    summary = stability_lib.summarize(np.empty(0), np.empty(0, dtype=np.int8))
    assert summary["overlap_at_10"] is None and summary["items"] == 0


def test_sample_rows_is_seeded_and_bounded():
    rows = np.arange(1000)[::-1]
    assert stability_lib.sample_rows(rows, 2000).tolist() == list(range(1000))
    first, second = stability_lib.sample_rows(rows, 100), stability_lib.sample_rows(rows, 100)
    assert len(first) == 100 and len(set(first.tolist())) == 100
    assert first.tolist() == second.tolist() == sorted(first.tolist())


# --- against a real serving directory -------------------------------------------------------------------

ITEMS = [f"i{n:02d}" for n in range(12)]


def _table(tmp_path, name, lists):
    ranked = {item: [(c, 1.0) for c in others] for item, others in lists.items()}
    table = candidate_table.from_lists(ranked, dict.fromkeys(ITEMS, 1), top_n=10)
    return candidate_table.save_table(table, str(tmp_path / name))


def _push(serving, tmp_path, name, lists, best="cooccurrence"):
    """One committed version holding a co-occurrence table and an evaluation naming the default source."""
    table = _table(tmp_path, name, lists)
    evaluation = tmp_path / f"{name}-evaluation"
    evaluation.mkdir()
    values = {"ks": [10], "sources": ["cooccurrence"], "best_source": best, "splits": {}}
    (evaluation / "evaluation.json").write_text(json.dumps(values))
    return serving_layout.publish_version(
        str(serving),
        {"cooccurrence": table, "evaluation": str(evaluation)},
        {"run": name},
        {"evaluation": {serving_layout.SERVED_SOURCES_FILE: {"default_source": best}}},
    ).version


def _candidate(lists):
    catalogue = catalogue_lib.catalogue_of(ITEMS)
    return catalogue, catalogue_lib.source_from_lists(
        {item: [(c, 1.0) for c in ranked] for item, ranked in lists.items()}, catalogue, 10
    )


def _rotated(shift):
    """Each item's 10 related items: the others along a ring of the 12 items, starting `shift` further on."""
    return {
        item: [ITEMS[(i + shift + j) % 12] for j in range(1, 13) if (shift + j) % 12][:10]
        for i, item in enumerate(ITEMS)
    }


def test_nothing_served_yet_is_said_not_raised(tmp_path):
    catalogue, source = _candidate(_rotated(0))
    popularity = np.ones(len(catalogue), dtype=np.int64)
    for serving_dir in (str(tmp_path / "serving"), None):
        result = stability_lib.measure(
            serving_dir, catalogue, {"cooccurrence": source}, popularity, "cooccurrence"
        )
        assert result["overlap_at_10"] is None and result["reason"]
        assert result["sources"] == {}


def test_the_candidate_is_compared_with_the_version_serving_answers_from(tmp_path):
    serving = tmp_path / "serving"
    first = _push(serving, tmp_path, "first", _rotated(0))
    catalogue, source = _candidate(_rotated(0))
    popularity = np.arange(len(catalogue), dtype=np.int64)
    result = stability_lib.measure(
        str(serving), catalogue, {"cooccurrence": source}, popularity, "cooccurrence"
    )
    assert result["overlap_at_10"] == 1.0 and result["served_version"] == first
    assert result["items"] == len(ITEMS) and result["items_in_both"] == len(ITEMS)
    assert set(result["buckets"]) == {"head", "torso", "tail"}
    assert sum(b["items"] for b in result["buckets"].values()) == len(ITEMS)
    assert result["reason"] is None and result["pinned_version"] is None

    # A second push shifts every item's list along the ring of items: part of each list survives.
    second = _push(serving, tmp_path, "second", _rotated(5))
    result = stability_lib.measure(
        str(serving), catalogue, {"cooccurrence": source}, popularity, "cooccurrence"
    )
    assert result["served_version"] == second
    expected = np.mean([stability_lib.overlap_at_k(_rotated(5)[item], _rotated(0)[item]) for item in ITEMS])
    assert result["overlap_at_10"] == pytest.approx(expected) and expected < 1.0

    # A rollback pins the first version: stability is measured against what is served, the pinned one.
    push_records.write_pin(str(serving), first, {"by": "test"})
    result = stability_lib.measure(
        str(serving), catalogue, {"cooccurrence": source}, popularity, "cooccurrence"
    )
    assert result["served_version"] == first and result["pinned_version"] == first
    assert result["overlap_at_10"] == 1.0


def test_items_only_one_version_knows_are_left_out(tmp_path):
    serving = tmp_path / "serving"
    served_lists = {item: ranked for item, ranked in _rotated(0).items() if item != "i00"}
    _push(serving, tmp_path, "first", served_lists)
    candidate_lists = {item: ranked for item, ranked in _rotated(0).items() if item != "i01"}
    catalogue, source = _candidate(candidate_lists)
    popularity = np.ones(len(catalogue), dtype=np.int64)
    result = stability_lib.measure(
        str(serving), catalogue, {"cooccurrence": source}, popularity, "cooccurrence"
    )
    # the table keeps a row for every item named (i00 as a neighbour): its list is empty, not compared;
    # i01 has an empty candidate list
    assert result["empty_lists"] == 2 and result["items"] == len(ITEMS) - 2
    assert result["overlap_at_10"] == 1.0


def test_the_headline_compares_the_served_default_source_with_the_candidates(tmp_path):
    serving = tmp_path / "serving"
    _push(serving, tmp_path, "first", _rotated(0), best="cooccurrence")
    catalogue, same = _candidate(_rotated(0))
    _, other = _candidate(_rotated(3))
    popularity = np.ones(len(catalogue), dtype=np.int64)
    sources = {"cooccurrence": same, "board": other}
    result = stability_lib.measure(str(serving), catalogue, sources, popularity, "board")
    # serving answers from co-occurrence today; the candidate would answer from board
    assert result["source"] == "board" and result["served_source"] == "cooccurrence"
    assert result["sources"]["cooccurrence"]["overlap_at_10"] == 1.0
    assert result["not_served"] == ["board"]
    assert result["overlap_at_10"] < 1.0
    assert result["overlap_at_10"] == result["from_served_default"]["board"]["overlap_at_10"]
    assert result["from_served_default"]["cooccurrence"]["overlap_at_10"] == 1.0


def test_an_index_source_is_read_through_its_searcher(tmp_path):
    embeddings = np.random.default_rng(5).normal(size=(len(ITEMS), 4)).astype(np.float32)
    settings = IndexSettings()
    directory = str(tmp_path / "index")
    index_lib.save_index(
        index_lib.build_index(embeddings, settings), ITEMS, embeddings, directory, settings, 1.0
    )
    serving = tmp_path / "serving"
    serving_layout.publish_version(str(serving), {"pin2vec_similar": directory}, {"run": "1"})
    served = stability_lib.ServedLists(
        stability_lib.served_directory(str(serving), "pin2vec_similar"), "pin2vec_similar",
        catalogue_lib.catalogue_of(ITEMS),
    )  # fmt: skip
    catalogue = served.catalogue
    rows = served.rows(np.arange(len(ITEMS)))
    lists = {item: [(ITEMS[r], 1.0) for r in rows[i] if r >= 0] for i, item in enumerate(ITEMS)}
    assert all(len(ranked) == 10 and item not in dict(ranked) for item, ranked in lists.items())
    source = catalogue_lib.source_from_lists(lists, catalogue, 10)
    popularity = np.ones(len(catalogue), dtype=np.int64)
    result = stability_lib.measure(
        str(serving), catalogue, {"pin2vec_similar": source}, popularity, "pin2vec_similar"
    )
    assert result["overlap_at_10"] == 1.0 and result["items"] == len(ITEMS)
