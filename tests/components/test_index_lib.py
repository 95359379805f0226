"""index_lib: recall on clustered data, exact search, validation, save/load (also after a move), batching."""

import json
import logging
import os

import numpy as np
import pytest

from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from formats import index_files
from formats.settings_codec import decode_settings, encode_settings


def clustered(num_items=5000, dim=32, num_clusters=50, noise=0.3, seed=0):
    """Gaussian clusters around random centres: the structure a partitioned index relies on."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_clusters, dim))
    points = centres[rng.integers(num_clusters, size=num_items)] + noise * rng.normal(size=(num_items, dim))
    return points.astype(np.float32)


@pytest.fixture(scope="module")
def tree_index():
    """The default (tree + AH + reorder) index over 5,000 clustered items, built once for the module."""
    embeddings = clustered()
    settings = IndexSettings()
    return index_lib.build_index(embeddings, settings), embeddings, settings


def test_default_settings_reach_recall_on_clustered_data(tree_index):
    searcher, embeddings, settings = tree_index
    assert (
        index_lib.resolve_partitioning(len(embeddings), settings) is not None
    )  # the tree path, not brute force
    assert index_lib.measure_recall(searcher, embeddings, settings) >= 0.95


def test_small_index_is_brute_force_exact_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="absl")
    embeddings = clustered(num_items=300, dim=8, num_clusters=5)
    settings = IndexSettings()
    searcher = index_lib.build_index(embeddings, settings)
    assert "brute force" in caplog.text
    assert index_lib.measure_recall(searcher, embeddings, settings) == 1.0


def test_resolve_partitioning_defaults_and_clamps():
    assert index_lib.resolve_partitioning(1999, IndexSettings()) is None
    assert index_lib.resolve_partitioning(10_000, IndexSettings()) == index_lib.Partitioning(100, 10)
    assert index_lib.resolve_partitioning(3000, IndexSettings(num_leaves=5000)) == index_lib.Partitioning(
        3000, 300
    )
    forced = index_lib.resolve_partitioning(50, IndexSettings(brute_force_below=0, num_leaves_to_search=3))
    assert forced == index_lib.Partitioning(7, 3)


def test_exact_neighbors_matches_naive_search(monkeypatch):
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(200, 8)).astype(np.float32)
    queries = rng.normal(size=(37, 8)).astype(np.float32)
    naive = np.array([sorted(range(200), key=lambda i, q=q: -float(q @ embeddings[i]))[:5] for q in queries])
    np.testing.assert_array_equal(index_lib.exact_neighbors(embeddings, queries, 5), naive)
    monkeypatch.setattr(index_lib, "_EXACT_SEARCH_CHUNK", 400)  # 2 queries per chunk
    np.testing.assert_array_equal(index_lib.exact_neighbors(embeddings, queries, 5), naive)
    everything = index_lib.exact_neighbors(embeddings, queries[:1], 200)
    assert sorted(everything[0]) == list(range(200))
    assert everything[0][0] == naive[0][0]


def test_exact_neighbors_rejects_bad_k_and_dims():
    embeddings = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 4\].*got 5"):
        index_lib.exact_neighbors(embeddings, embeddings, 5)
    with pytest.raises(ValueError, match="queries have 3 dimensions but embeddings have 4"):
        index_lib.exact_neighbors(embeddings, np.ones((1, 3), np.float32), 1)


def test_recall_at_k_hand_computed():
    assert index_lib.recall_at_k([[1, 2, 3], [4, 5, 6]], [[1, 2, 9], [6, 5, 4]]) == pytest.approx(5 / 6)
    assert index_lib.recall_at_k(np.array([[7, 8]]), np.array([[8, 7]])) == 1.0
    assert index_lib.recall_at_k([[], [1]], [[1], [1]]) == 0.5  # a short approximate row counts as misses
    with pytest.raises(ValueError, match="approx_ids has 1 rows but exact_ids has 2"):
        index_lib.recall_at_k([[1]], [[1], [2]])
    with pytest.raises(ValueError, match="row 0: 3 approximate ids for 2 exact"):
        index_lib.recall_at_k([[1, 2, 3]], [[1, 2]])


def test_invalid_embeddings_are_rejected_with_what_and_where():
    settings = IndexSettings()
    bad = np.ones((10, 4), np.float32)
    bad[3, 1] = np.nan
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite values in 2 of 10 rows \(first: row 3\)"):
        index_lib.build_index(bad, settings)
    with pytest.raises(ValueError, match=r"must be a 2-D array .*got shape \(5,\)"):
        index_lib.build_index(np.ones(5, np.float32), settings)
    with pytest.raises(ValueError, match=r"need at least 2 items.*got 1"):
        index_lib.build_index(np.ones((1, 4), np.float32), settings)
    with pytest.raises(ValueError, match="must hold floats; got dtype int64"):
        index_lib.build_index(np.ones((4, 4), np.int64), settings)


def test_normalize_rows_gives_unit_rows_and_keeps_zero_rows():
    normalized = index_files.normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0], [-2.0, 0.0]]))
    np.testing.assert_allclose(normalized, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]], rtol=1e-6)
    assert normalized.dtype == np.float32


def test_settings_json_round_trip_and_validation():
    settings = IndexSettings(num_neighbors=5, num_leaves=30, min_recall=0.8, normalize=False)
    decode = lambda text: decode_settings(IndexSettings, text, "index_config")  # noqa: E731
    assert decode(encode_settings(settings)) == settings
    assert decode("{}") == IndexSettings()
    with pytest.raises(ValueError, match=r"index_config: unknown setting IndexSettings\.num_leafs \(known: "):
        decode('{"num_leafs": 3}')
    with pytest.raises(ValueError, match="index_config: not valid JSON"):
        decode("num_leaves=3")
    with pytest.raises(ValueError, match=r'setting IndexSettings\.num_neighbors must be int, got "10"'):
        decode('{"num_neighbors": "10"}')
    with pytest.raises(ValueError, match="num_neighbors must be an integer >= 1; got True"):
        IndexSettings(num_neighbors=True)
    with pytest.raises(ValueError, match="num_leaves_to_search=8 is more than num_leaves=4"):
        IndexSettings(num_leaves=4, num_leaves_to_search=8)
    with pytest.raises(ValueError, match=r"setting IndexSettings\.normalize must be bool, got 1"):
        decode('{"normalize": 1}')


def _item_ids(n):
    """Ids with a non-ASCII one and one that is not UTF-8 at all, to check both survive the round trip."""
    return ["café", index_files.decode_item_id(b"\xff\xfe-raw")] + [f"item-{i}" for i in range(2, n)]


def test_save_load_round_trip_gives_identical_results_even_after_a_rename(tree_index, tmp_path):
    searcher, embeddings, settings = tree_index
    item_ids = _item_ids(len(embeddings))
    queries = index_files.normalize_rows(embeddings[::97])
    expected_ids, expected_scores = searcher.search_batched(queries, final_num_neighbors=10)

    written = tmp_path / "pushing"
    metadata = index_lib.save_index(searcher, item_ids, embeddings, str(written), settings, recall=0.97)
    assert sorted(os.listdir(written)) == ["embeddings.npy", "index.json", "item_ids.txt", "scann"]
    assert metadata == json.loads((written / "index.json").read_text())
    assert metadata["num_items"] == 5000 and metadata["dimensions"] == 32 and metadata["k"] == 10
    assert metadata["blessed"] is True and metadata["brute_force"] is False
    assert metadata["settings"]["num_neighbors"] == 10 and metadata["scann_version"].startswith("1.")

    moved = tmp_path / "7"
    os.rename(written, moved)
    assert str(written) in (moved / "scann" / "scann_assets.pbtxt").read_text()  # ScaNN's absolute paths
    loaded, loaded_ids, loaded_embeddings, loaded_metadata = index_files.load_index(str(moved))
    assert loaded_ids == item_ids
    assert loaded_metadata == metadata
    np.testing.assert_array_equal(loaded_embeddings, index_files.normalize_rows(embeddings))
    ids, scores = loaded.search_batched(queries, final_num_neighbors=10)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)


def test_brute_force_index_round_trip(tmp_path):
    embeddings = clustered(num_items=50, dim=4, num_clusters=3)
    settings = IndexSettings(normalize=False, min_recall=1.01)
    searcher = index_lib.build_index(embeddings, settings)
    metadata = index_lib.save_index(searcher, _item_ids(50), embeddings, str(tmp_path / "i"), settings, 1.0)
    assert metadata["brute_force"] is True and metadata["blessed"] is False and metadata["num_leaves"] is None
    loaded, _, loaded_embeddings, _ = index_files.load_index(str(tmp_path / "i"))
    np.testing.assert_array_equal(loaded_embeddings, embeddings)  # not normalized: normalize=False
    np.testing.assert_array_equal(
        loaded.search_batched(embeddings, final_num_neighbors=5)[0],
        searcher.search_batched(embeddings, final_num_neighbors=5)[0],
    )


def test_save_index_rejects_bad_ids_and_a_used_directory(tmp_path):
    embeddings = np.eye(3, dtype=np.float32)
    settings = IndexSettings()
    searcher = index_lib.build_index(embeddings, settings)
    with pytest.raises(ValueError, match=r"item id at row 1 contains a newline: 'b\\nc'"):
        index_lib.save_index(searcher, ["a", "b\nc", "d"], embeddings, str(tmp_path / "x"), settings, 1.0)
    with pytest.raises(ValueError, match="'a' appears more than once"):
        index_lib.save_index(searcher, ["a", "b", "a"], embeddings, str(tmp_path / "x"), settings, 1.0)
    with pytest.raises(ValueError, match="got 2 item ids for 3 embedding rows"):
        index_lib.save_index(searcher, ["a", "b"], embeddings, str(tmp_path / "x"), settings, 1.0)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="is not empty"):
        index_lib.save_index(searcher, ["a", "b", "c"], embeddings, str(tmp_path / "used"), settings, 1.0)


def test_load_index_refuses_incomplete_index_and_pickles(tmp_path):
    with pytest.raises(ValueError, match=r"no index\.json .* not a complete index"):
        index_files.load_index(str(tmp_path))
    embeddings = np.eye(3, dtype=np.float32)
    settings = IndexSettings()
    searcher = index_lib.build_index(embeddings, settings)
    index_lib.save_index(searcher, ["a", "b", "c"], embeddings, str(tmp_path / "i"), settings, 1.0)
    (tmp_path / "i" / "scann" / "scann_docids.pkl").write_bytes(b"not to be unpickled")
    with pytest.raises(ValueError, match="refusing to unpickle"):
        index_files.load_index(str(tmp_path / "i"))


def test_embed_items_calls_in_batches_and_keeps_order():
    batches = []

    def embed_fn(batch):
        batches.append(list(batch))
        return np.array([[float(item_id[1:]), 1.0] for item_id in batch])

    item_ids = [f"i{n}" for n in range(10)]
    result = index_lib.embed_items(embed_fn, item_ids, batch_size=4, log_every=1)
    assert [len(batch) for batch in batches] == [4, 4, 2]
    assert result.dtype == np.float32 and result.shape == (10, 2)
    np.testing.assert_array_equal(result[:, 0], np.arange(10))


def test_embed_items_rejects_bad_outputs_and_inputs():
    with pytest.raises(ValueError, match=r"shape \(3, 2\) for batch 1 of 2 ids; expected \[2, dim\]"):
        index_lib.embed_items(
            lambda batch: np.ones((3, 2)) if batch[0] == "c" else np.ones((2, 2)), list("abcd"), 2
        )
    with pytest.raises(ValueError, match="3 dimensions for batch 1 but 2 for the first"):
        index_lib.embed_items(
            lambda batch: np.ones((len(batch), 2 if batch[0] == "a" else 3)), list("abcd"), 2
        )
    with pytest.raises(ValueError, match="no item ids to embed"):
        index_lib.embed_items(lambda batch: np.ones((len(batch), 2)), [])
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        index_lib.embed_items(lambda batch: np.ones((len(batch), 2)), ["a"], batch_size=0)


def test_leaves_to_search_widen_until_recall_is_met_on_unclustered_vectors():
    vectors = np.random.default_rng(3).normal(size=(6000, 32)).astype(np.float32)  # no clusters at all
    settings = IndexSettings(min_recall=0.9, recall_sample_size=200)
    searcher = index_lib.build_index(vectors, settings)
    default_breadth = index_lib.resolve_partitioning(len(vectors), settings).num_leaves_to_search
    assert index_lib.measure_recall(searcher, vectors, settings) < 0.9  # a tenth of the leaves is too few

    tuned, recall = index_lib.tune_leaves_to_search(searcher, vectors, settings)
    assert recall >= 0.9
    assert tuned.num_leaves_to_search > default_breadth
    assert index_lib.measure_recall(searcher, vectors, tuned, tuned.num_leaves_to_search) == recall

    fixed = IndexSettings(min_recall=0.9, recall_sample_size=200, num_leaves_to_search=default_breadth)
    assert index_lib.tune_leaves_to_search(searcher, vectors, fixed)[0] == fixed  # the user's choice stands


def _next_engagement_model(num_items=3000, dim=16, seed=3):
    """Hidden layers, softmax rows and biases shaped like a trained network's: rows of uneven norms."""
    rng = np.random.default_rng(seed)
    hidden = np.abs(clustered(num_items, dim, seed=seed))
    rows = clustered(num_items, dim, seed=seed + 1) * rng.uniform(0.2, 2.0, size=(num_items, 1))
    biases = rng.normal(size=num_items).astype(np.float32)
    return hidden, rows.astype(np.float32), biases


@pytest.mark.parametrize("with_bias", [False, True])
def test_next_engagement_vectors_turn_the_softmax_logit_into_an_inner_product(with_bias):
    hidden, rows, biases = _next_engagement_model(num_items=50)
    indexed, queries = index_lib.next_engagement_vectors(hidden, rows, biases, with_bias)
    expected = hidden @ rows.T + (biases[np.newaxis, :] if with_bias else 0.0)
    np.testing.assert_allclose(queries @ indexed.T, expected, rtol=1e-5, atol=1e-5)


def test_next_engagement_vectors_reject_mismatched_shapes():
    hidden, rows, biases = _next_engagement_model(num_items=20)
    with pytest.raises(ValueError, match="same items"):
        index_lib.next_engagement_vectors(hidden, rows[:10], biases, with_bias=True)
    with pytest.raises(ValueError, match="same items"):
        index_lib.next_engagement_vectors(hidden, rows, biases[:5], with_bias=False)


@pytest.mark.parametrize("num_items", [500, 3000])  # brute force, then the tree + AH + reorder path
def test_inner_product_index_finds_the_brute_force_top_k_of_unnormalised_vectors(num_items):
    hidden, rows, biases = _next_engagement_model(num_items)
    indexed, queries = index_lib.next_engagement_vectors(hidden, rows, biases, with_bias=True)
    settings = IndexSettings(normalize=False, brute_force_below=1000)
    searcher = index_lib.build_index(indexed, settings)
    settings, recall = index_lib.tune_leaves_to_search(searcher, indexed, settings, queries)
    sample = index_lib.recall_sample(indexed, settings, queries)
    brute = np.argsort(-(sample.queries @ indexed.T), axis=1, kind="stable")[:, : sample.k]
    np.testing.assert_array_equal(np.sort(sample.exact, axis=1), np.sort(brute, axis=1))
    assert recall >= settings.min_recall
    if num_items < settings.brute_force_below:
        found, _ = searcher.search_batched(sample.queries, final_num_neighbors=sample.k)
        np.testing.assert_array_equal(np.asarray(found), sample.exact)  # exact: the same rows, same order
