"""RelatedItemsSearcher on saved indexes (brute force and tree), and the choice of the version to serve."""

import json

import numpy as np
import pytest

from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from formats import index_files
from formats.index_searcher import RelatedItemsSearcher, latest_version_dir


def _save(directory, num_items, settings):
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(8, 16))
    embeddings = (centres[rng.integers(8, size=num_items)] + 0.3 * rng.normal(size=(num_items, 16))).astype(
        np.float32
    )
    item_ids = [f"item-{i}" for i in range(num_items)]
    searcher = index_lib.build_index(embeddings, settings)
    index_lib.save_index(searcher, item_ids, embeddings, str(directory), settings, recall=1.0)
    return item_ids, index_files.normalize_rows(embeddings)


@pytest.fixture(scope="module")
def brute_force(tmp_path_factory):
    directory = tmp_path_factory.mktemp("brute_force") / "1"
    item_ids, vectors = _save(directory, 200, IndexSettings())
    return RelatedItemsSearcher(str(directory)), item_ids, vectors


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tree") / "1"
    item_ids, vectors = _save(directory, 600, IndexSettings(brute_force_below=0))
    return RelatedItemsSearcher(str(directory)), item_ids, vectors


def test_related_excludes_the_query_and_matches_exact_search(brute_force):
    searcher, item_ids, vectors = brute_force
    result = searcher.related([item_ids[0], item_ids[42]], k=5)
    for query in (0, 42):
        exact = index_lib.exact_neighbors(vectors, vectors[query : query + 1], 6)[0]
        expected = [item_ids[i] for i in exact if i != query][:5]
        related = result[item_ids[query]]
        assert [item_id for item_id, _ in related] == expected
        scores = [score for _, score in related]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == pytest.approx(float(vectors[query] @ vectors[exact[1]]), abs=1e-5)


def test_unknown_ids_map_to_none(brute_force):
    searcher, item_ids, _ = brute_force
    assert searcher.related(["nope", "item-\n"], k=3) == {"nope": None, "item-\n": None}
    result = searcher.related(["nope", item_ids[7]], k=3)
    assert result["nope"] is None and len(result[item_ids[7]]) == 3


def test_k_is_bounded(brute_force, tmp_path):
    searcher, item_ids, _ = brute_force
    assert searcher.max_k == 100
    for k in (0, 101, True, 2.0):
        with pytest.raises(ValueError, match=r"k must be an integer in \[1, 100\] .* got"):
            searcher.related([item_ids[0]], k=k)
    with pytest.raises(TypeError, match="a list of ids, not a single str"):
        searcher.related(item_ids[0], k=3)
    _save(tmp_path / "small", 5, IndexSettings())
    small = RelatedItemsSearcher(str(tmp_path / "small"))
    assert small.max_k == 4  # every other item, never itself
    assert {item_id for item_id, _ in small.related(["item-2"], k=4)["item-2"]} == {
        "item-0",
        "item-1",
        "item-3",
        "item-4",
    }


def test_tree_index_serves_more_than_the_k_it_was_built_for(tree):
    searcher, item_ids, _ = tree
    assert searcher.metadata["brute_force"] is False
    related = searcher.related(item_ids[:3], k=50)
    for query in item_ids[:3]:
        ids = [item_id for item_id, _ in related[query]]
        assert len(ids) == 50 and len(set(ids)) == 50 and query not in ids


def test_latest_version_dir_skips_temporary_incomplete_and_non_integer_names(tmp_path):
    assert latest_version_dir(str(tmp_path / "missing")) is None
    assert latest_version_dir(str(tmp_path)) is None
    for name in ("1", "2", "10", "11", ".123.tmp", "abc", "12x"):
        (tmp_path / name).mkdir()
        if name != "11":  # 11 has no index.json yet: still being written
            (tmp_path / name / "index.json").write_text("{}")
    (tmp_path / "99").write_text("a file, not a version directory")
    assert latest_version_dir(str(tmp_path)) == str(tmp_path / "10")


def test_related_arrays_hold_what_related_answers_row_by_row(tree):
    searcher, item_ids, _ = tree
    ids = [item_ids[3], "nope", item_ids[3], item_ids[10]]  # an unknown id and a duplicate
    arrays = searcher.related_arrays(ids, k=7)
    lists = searcher.related(ids, k=7)
    assert arrays.ids.shape == arrays.scores.shape == (4, 7) and arrays.scores.dtype == np.float32
    assert arrays.known.tolist() == [True, False, True, True]
    for row, item_id in enumerate(ids):
        expected = lists[item_id]
        if expected is None:
            assert arrays.ids[row].tolist() == [b""] * 7 and arrays.scores[row].tolist() == [-1.0] * 7
            continue
        assert arrays.ids[row].tolist() == [index_files.encode_item_id(other) for other, _ in expected]
        assert arrays.scores[row].tolist() == [score for _, score in expected]
    with pytest.raises(ValueError, match="k must be an integer"):
        searcher.related_arrays(ids, k=0)


@pytest.mark.parametrize("index", ["brute_force", "tree"])
def test_related_row_is_the_row_related_arrays_gives(index, request):
    searcher, item_ids, _ = request.getfixturevalue(index)
    for item_id in (item_ids[3], item_ids[150]):
        for k in (1, 7, 60):  # 60: beyond the k the tree was built for, so its breadth widens
            arrays = searcher.related_arrays([item_id], k)
            ids, scores = searcher.related_row(item_id, k)
            assert ids == arrays.ids[0].tolist() and len(ids) == k
            assert np.float32(scores).tolist() == arrays.scores[0].tolist()
    assert searcher.related_row("nope", 5) is None
    with pytest.raises(ValueError, match="k must be an integer"):
        searcher.related_row(item_ids[3], searcher.max_k + 1)


def test_breadth_widens_for_a_large_k_only_where_the_leaves_hold_too_few_candidates(tree):
    searcher, _, _ = tree
    meta = searcher.metadata
    built = meta["num_leaves_to_search"]
    assert searcher._leaves_to_search(meta["k"]) == built
    # 600 items: a larger k needs more leaves to hold 4x the candidates rescored exactly
    assert built < searcher._leaves_to_search(100) <= meta["num_leaves"]
    # a million items in the same number of leaves: the built breadth already holds plenty
    searcher.metadata = {**meta, "num_items": 1_000_000}
    try:
        assert searcher._leaves_to_search(100) == built
    finally:
        searcher.metadata = meta


def test_an_index_with_query_vectors_answers_by_them_and_never_with_the_query_itself(tmp_path):
    """The pin2vec (next-engagement) layout: items indexed by one vector, queried with another."""
    rng = np.random.default_rng(5)
    indexed = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(300, 8)).astype(np.float32)
    settings = IndexSettings(normalize=False)
    ids = [f"item-{i}" for i in range(300)]
    searcher = index_lib.build_index(indexed, settings)
    index_lib.save_index(searcher, ids, indexed, str(tmp_path / "next"), settings, 1.0, queries, "next")
    related = RelatedItemsSearcher(str(tmp_path / "next")).related(ids[:20], 5)
    assert json.loads((tmp_path / "next" / index_files.METADATA_FILE).read_text())["scorer"] == "next"
    for row in range(20):
        scores = indexed @ queries[row]
        scores[row] = -np.inf
        expected = np.argsort(-scores, kind="stable")[:5]
        assert [item for item, _ in related[ids[row]]] == [ids[i] for i in expected]
        np.testing.assert_allclose([s for _, s in related[ids[row]]], scores[expected], rtol=1e-5)


def test_query_vectors_of_another_shape_are_refused(tmp_path):
    vectors = np.eye(4, dtype=np.float32)
    searcher = index_lib.build_index(vectors, IndexSettings(normalize=False))
    with pytest.raises(ValueError, match="queries have shape"):
        index_lib.save_index(
            searcher,
            list("abcd"),
            vectors,
            str(tmp_path / "x"),
            IndexSettings(normalize=False),
            1.0,
            vectors[:2],
        )


@pytest.mark.parametrize("brute_force_below", [10_000, 0], ids=["brute force", "tree + AH + reorder"])
def test_an_index_whose_scann_vectors_differ_from_its_embeddings_is_refused(tmp_path, brute_force_below):
    """No manifest needed: ScaNN's exact scores must be the dot products with embeddings.npy."""
    directory = tmp_path / "1"
    _save(directory, 600, IndexSettings(brute_force_below=brute_force_below))
    RelatedItemsSearcher(str(directory))  # intact: loads
    embeddings = np.load(directory / index_files.EMBEDDINGS_FILE)
    rolled = np.roll(embeddings, 1, axis=0)  # same size and rows, wrong order: what a stale copy looks like
    np.save(directory / index_files.EMBEDDINGS_FILE, rolled)
    with pytest.raises(ValueError, match=r"ScaNN's stored vectors do not match embeddings\.npy"):
        RelatedItemsSearcher(str(directory))


def test_a_saved_index_is_searched_without_importing_tensorflow(brute_force, tree):
    """Servers and `pin2vec related` load ScaNN's extension alone; the answers are the same as in a process
    that imported the `scann` package (this one)."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from formats.index_searcher import RelatedItemsSearcher\n"
        "queries = json.loads(sys.argv[1])\n"
        "answers = {d: RelatedItemsSearcher(d).related(ids, k=5) for d, ids in queries.items()}\n"
        "print(json.dumps({'tensorflow': 'tensorflow' in sys.modules, 'scann': 'scann' in sys.modules,"
        " 'answers': answers}))\n"
    )
    queries = {fixture[0].directory: fixture[1][:3] for fixture in (brute_force, tree)}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(queries)], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tensorflow"] is False and result["scann"] is False
    for fixture in (brute_force, tree):
        searcher, item_ids, _ = fixture
        expected = searcher.related(item_ids[:3], k=5)
        answered = result["answers"][searcher.directory]
        for item_id in item_ids[:3]:
            assert [i for i, _ in answered[item_id]] == [i for i, _ in expected[item_id]]
            assert [s for _, s in answered[item_id]] == pytest.approx(
                [s for _, s in expected[item_id]], abs=1e-6
            )


@pytest.mark.parametrize("index", ["brute_force", "tree"])
@pytest.mark.parametrize("parallel", [False, True])
def test_neighbour_rows_are_related_arrays_as_index_rows(index, parallel, request):
    searcher, item_ids, _ = request.getfixturevalue(index)
    rows = np.array([3, 150, 3, 0, 199])  # a duplicate too
    for k in (1, 7, 60):
        neighbours, scores = searcher.neighbour_rows(rows, k, parallel=parallel)
        arrays = searcher.related_arrays([item_ids[r] for r in rows], k)
        assert neighbours.shape == scores.shape == (5, k) and scores.dtype == np.float32
        encode = index_files.encode_item_id
        named = [[encode(item_ids[n]) if n >= 0 else b"" for n in row] for row in neighbours]
        assert named == arrays.ids.tolist()
        assert scores.tolist() == arrays.scores.tolist()
        assert not (neighbours == rows[:, None]).any()
    empty, empty_scores = searcher.neighbour_rows(np.empty(0, np.int64), 3)
    assert empty.shape == empty_scores.shape == (0, 3)
    with pytest.raises(ValueError, match="k must be an integer"):
        searcher.neighbour_rows(rows, k=0)
