"""embedding_export: the pushed index's vectors as word2vec text (read back by gensim) and projector TSV."""

from __future__ import annotations

import os

import numpy as np
import pytest

from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from formats import candidate_table, index_files
from serving import embedding_export
from serving.embedding_export import EmbeddingExportSettings

DIM = 8


def push_index(serving_dir: str, version: int, item_ids: list[str], seed: int) -> np.ndarray:
    """A real ScaNN index saved where the RelatedPusher puts it; returns the vectors as stored (unit rows)."""
    vectors = np.random.default_rng(seed).normal(size=(len(item_ids), DIM)).astype(np.float32)
    settings = IndexSettings()
    searcher = index_lib.build_index(vectors, settings)
    directory = os.path.join(serving_dir, "pin2vec_similar", str(version))
    index_lib.save_index(searcher, item_ids, vectors, directory, settings, recall=1.0)
    return index_files.normalize_rows(vectors)


@pytest.fixture
def serving(tmp_path):
    serving_dir = str(tmp_path / "serving")
    push_index(serving_dir, 1, [f"old-{i}" for i in range(20)], seed=1)
    ids = ["café", "50", "181"] + [f"item-{i}" for i in range(3, 40)]
    vectors = push_index(serving_dir, 2, ids, seed=2)
    os.makedirs(os.path.join(serving_dir, "pin2vec_similar", ".3-in-progress"))  # in progress: ignored
    return serving_dir, ids, vectors


def test_word2vec_round_trips_through_gensim(serving, tmp_path):
    from gensim.models import KeyedVectors

    serving_dir, ids, vectors = serving
    out = str(tmp_path / "exported" / "items.w2v.txt")
    loaded, paths = embedding_export.export_embeddings(EmbeddingExportSettings(serving_dir, out, "word2vec"))
    assert paths == [out]
    assert loaded.source.endswith(os.path.join("pin2vec_similar", "2"))  # the latest complete version
    with open(out, encoding="utf-8") as f:
        assert f.readline() == f"{len(ids)} {DIM}\n"
    keyed = KeyedVectors.load_word2vec_format(out, binary=False)
    assert list(keyed.index_to_key) == ids
    np.testing.assert_array_equal(keyed.vectors, vectors)  # %.9g round-trips float32 exactly
    # Neighbours by gensim's cosine = the index's: the stored vectors are the indexed ones.
    expected = ids[int(np.argsort(-(vectors[1:] @ vectors[0]))[0]) + 1]
    assert keyed.most_similar("café", topn=1)[0][0] == expected
    assert not [name for name in os.listdir(os.path.dirname(out)) if name.endswith(".tmp")]


def test_word2vec_refuses_ids_with_whitespace_naming_them(tmp_path):
    vectors = np.eye(3, dtype=np.float32)
    out = str(tmp_path / "v.txt")
    with pytest.raises(ValueError, match=r"'with space' \(row 1\) contains whitespace.*--format tsv"):
        embedding_export.write_word2vec(out, ["a", "with space", "c"], vectors)
    with pytest.raises(ValueError, match=r"'tab\\there' \(row 0\)"):
        embedding_export.write_word2vec(out, ["tab\there", "b", "c"], vectors)
    with pytest.raises(ValueError, match=r"'\\udcff-x' \(row 2\) is not valid UTF-8"):
        embedding_export.write_word2vec(out, ["a", "b", "\udcff-x"], vectors)
    assert not os.path.exists(out)


def test_tsv_directory_with_titles_and_popularity(serving, tmp_path):
    serving_dir, ids, vectors = serving
    out = str(tmp_path / "projector")
    titles = {"50": "Star Wars (1977)", "181": "Return of the Jedi\t(1983)"}
    popularity = {"50": 583, "café": 7}
    _, paths = embedding_export.export_embeddings(
        EmbeddingExportSettings(serving_dir, out, "tsv"), titles=titles, popularity=popularity
    )
    assert paths == [os.path.join(out, "vectors.tsv"), os.path.join(out, "metadata.tsv")]
    read = np.loadtxt(paths[0], delimiter="\t", dtype=np.float32)
    np.testing.assert_array_equal(read, vectors)
    with open(paths[1], encoding="utf-8") as f:
        metadata = f.read().split("\n")
    assert metadata[0] == "item\ttitle\tpopularity"
    assert metadata[1:4] == ["café\t\t7", "50\tStar Wars (1977)\t583", "181\tReturn of the Jedi (1983)\t"]
    assert len(metadata) == len(ids) + 2  # header, one row per vector, final newline
    assert all(line.count("\t") == 2 for line in metadata[1:-1])


def test_tsv_ids_only_has_no_header_and_prefix_names_files(tmp_path):
    ids = ["a", "with space", "c"]
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2) / 7
    prefix = str(tmp_path / "out" / "ml100k_")
    vectors_path, metadata_path = embedding_export.write_projector_tsv(prefix, ids, vectors)
    assert (vectors_path, metadata_path) == (prefix + "vectors.tsv", prefix + "metadata.tsv")
    with open(metadata_path, encoding="utf-8") as f:
        assert f.read() == "a\nwith space\nc\n"  # whitespace is fine in TSV, only tabs are not
    with open(vectors_path, encoding="utf-8") as f:
        first = f.readline().rstrip("\n").split("\t")
    assert [float(v) for v in first] == pytest.approx([0.0, 1 / 7])
    with pytest.raises(ValueError, match=r"'x\\ty' \(row 0\) contains a tab"):
        embedding_export.write_projector_tsv(str(tmp_path / "bad"), ["x\ty"], np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="2 item ids for 3 vectors"):
        embedding_export.write_projector_tsv(str(tmp_path / "bad"), ["a", "b"], vectors)


def test_reads_what_load_index_reads_and_refuses_an_inconsistent_index(serving):
    serving_dir, _, _ = serving
    directory = os.path.join(serving_dir, "pin2vec_similar", "2")
    _, item_ids, embeddings, _ = index_files.load_index(directory)
    read = embedding_export.read_index_vectors(directory)
    assert read.item_ids == item_ids
    np.testing.assert_array_equal(read.vectors, embeddings)
    with open(os.path.join(directory, index_files.ITEM_IDS_FILE), "ab") as f:
        f.write(b"one-too-many\n")
    with pytest.raises(ValueError, match=r"inconsistent: index.json says 40 items x 8 dims.*41 ids"):
        embedding_export.read_index_vectors(directory)


def test_missing_index_and_bad_format_say_what_to_do(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"no complete pushed index under .*pin2vec_similar; run `pin2vec run`"
    ):
        embedding_export.load_pushed_vectors(str(tmp_path / "serving"))
    with pytest.raises(ValueError, match=r"format='csv' is invalid"):
        EmbeddingExportSettings(str(tmp_path), str(tmp_path / "x"), "csv")


def test_popularity_from_the_runs_newest_cooccurrence_table(tmp_path):
    assert embedding_export.latest_cooccurrence_popularity(str(tmp_path)) is None
    table = candidate_table.from_lists({"a": [("b", 2.0)], "b": [("a", 2.0)]}, {"a": 5, "b": 3}, 2)
    directory = tmp_path / "pipeline" / "CooccurrenceCandidates" / "candidates" / "7"
    candidate_table.save_table(table, str(directory))
    assert embedding_export.latest_cooccurrence_popularity(str(tmp_path)) == {"a": 5, "b": 3}


def test_cli_exports_with_titles_and_the_runs_popularity(serving, tmp_path, capsys):
    from pipeline import cli

    serving_dir, ids, _ = serving
    run_dir = tmp_path  # the fixture's serving dir is <tmp_path>/serving, as in a run's output directory
    table = candidate_table.from_lists({"50": [("181", 9.0)]}, {"50": 583, "181": 402}, 1)
    candidate_table.save_table(
        table, str(run_dir / "pipeline" / "CooccurrenceCandidates" / "candidates" / "4")
    )
    titles = tmp_path / "titles.tsv"
    titles.write_text("item_id\ttitle\n50\tStar Wars (1977)\n", encoding="utf-8")
    out = tmp_path / "projector"
    argv = ["export-embeddings", "--format", "tsv", "--out", str(out), "--output-dir", str(run_dir)]
    assert cli.main([*argv, "--titles", str(titles)]) == 0
    assert f"{len(ids)} item vectors (8-d" in capsys.readouterr().out
    rows = (out / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[:4] == ["item\ttitle\tpopularity", "café\t\t", "50\tStar Wars (1977)\t583", "181\t\t402"]

    word2vec = ["export-embeddings", "--format", "word2vec", "--out", str(tmp_path / "v.txt")]
    assert cli.main([*word2vec, "--serving-dir", serving_dir]) == 0
    assert (tmp_path / "v.txt").read_text(encoding="utf-8").startswith(f"{len(ids)} 8\n")
    assert cli.main([*argv[:-1], "/nonexistent"]) == 1
    assert "no complete pushed index under /nonexistent/serving/pin2vec_similar" in capsys.readouterr().err
