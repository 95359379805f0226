"""ScannIndexer: the executor on hand-made artifacts (a real tiny SavedModel, a Transform-shaped vocabulary
directory), and the component's spec."""

import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import types
from tfx.types import standard_artifacts

from components.scann_indexer import executor, index_lib
from components.scann_indexer.component import ScannIndex, ScannIndexer
from components.scann_indexer.index_lib import IndexSettings
from formats import index_files
from formats.settings_codec import decode_settings, encode_settings
from tests.tiny_embedding_model import TinyEmbeddingModel
from trainer_module import features

VOCABULARY = [b"caf\xc3\xa9", b"\xff-not-utf8", b"with space"] + [b"item-%d" % i for i in range(3, 60)]
DIM = 8


@pytest.fixture(scope="module")
def model_artifact(tmp_path_factory):
    rng = np.random.default_rng(0)
    vectors, softmax_rows = rng.normal(size=(2, len(VOCABULARY), DIM)).astype(np.float32)
    module = TinyEmbeddingModel(VOCABULARY, vectors, softmax_rows, np.zeros(len(VOCABULARY), np.float32))
    uri = str(tmp_path_factory.mktemp("model"))
    tf.saved_model.save(
        module,
        os.path.join(uri, "Format-Serving"),
        signatures={features.SERVING_SIGNATURE: module.serve.get_concrete_function()},
    )
    model = standard_artifacts.Model()
    model.uri = uri
    return model, vectors


def _transform_graph(directory, vocabulary):
    """The part of a Transform output that TFTransformOutput.vocabulary_file_by_name reads: the frequency
    vocabulary, spelled as tf.Transform writes it (a space in an id as __SPACE__)."""
    assets = directory / "transform_fn" / "assets"
    assets.mkdir(parents=True)
    if vocabulary is not None:
        lines = (
            b"%d %s\n" % (len(vocabulary) - row, item_id.replace(b" ", b"__SPACE__"))
            for row, item_id in enumerate(vocabulary)
        )
        (assets / features.VOCABULARY_COUNTS).write_bytes(b"".join(lines))
    artifact = standard_artifacts.TransformGraph()
    artifact.uri = str(directory)
    return artifact


def _run(model, transform_graph, directory, settings):
    index, next_index = ScannIndex(), ScannIndex()
    index.uri, next_index.uri = str(directory), str(directory) + "-next"
    directory.mkdir()  # the orchestrator creates output directories before Do()
    executor.Executor().Do(
        {executor.MODEL_KEY: [model], executor.TRANSFORM_GRAPH_KEY: [transform_graph]},
        {executor.INDEX_KEY: [index], executor.NEXT_INDEX_KEY: [next_index]},
        {executor.INDEX_CONFIG_KEY: encode_settings(settings)},
    )
    return index


def test_executor_indexes_every_vocabulary_item_and_blesses_a_good_index(model_artifact, tmp_path):
    model, vectors = model_artifact
    transform_graph = _transform_graph(tmp_path / "transform", VOCABULARY)
    index = _run(model, transform_graph, tmp_path / "index", IndexSettings(num_neighbors=5))

    assert index.get_float_custom_property(executor.RECALL_PROPERTY) == 1.0  # 60 items: brute force
    assert index.get_int_custom_property(executor.K_PROPERTY) == 5
    assert index.get_int_custom_property(executor.NUM_ITEMS_PROPERTY) == len(VOCABULARY)
    assert index.get_int_custom_property(executor.DIMENSIONS_PROPERTY) == DIM
    assert index.get_int_custom_property(executor.BLESSED_PROPERTY) == 1

    searcher, item_ids, embeddings, metadata = index_files.load_index(index.uri)
    assert [index_files.encode_item_id(item_id) for item_id in item_ids] == VOCABULARY
    np.testing.assert_allclose(embeddings, index_files.normalize_rows(vectors), rtol=1e-6)
    assert metadata["settings"]["num_neighbors"] == 5
    neighbours, _ = searcher.search_batched(embeddings[:3], final_num_neighbors=5)
    np.testing.assert_array_equal(neighbours, index_lib.exact_neighbors(embeddings, embeddings[:3], 5))


def test_executor_does_not_raise_on_low_recall_but_does_not_bless(model_artifact, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="absl")
    transform_graph = _transform_graph(tmp_path / "transform", VOCABULARY)
    index = _run(model_artifact[0], transform_graph, tmp_path / "index", IndexSettings(min_recall=1.01))
    assert index.get_int_custom_property(executor.BLESSED_PROPERTY) == 0
    assert index.get_float_custom_property(executor.RECALL_PROPERTY) == 1.0
    assert "NOT blessed: recall@10 = 1.0000 is below min_recall = 1.0100" in caplog.text
    assert json.loads((tmp_path / "index" / "index.json").read_text())["blessed"] is False


def test_executor_rejects_vocabulary_items_the_model_does_not_know(model_artifact, tmp_path):
    transform_graph = _transform_graph(tmp_path / "transform", [*VOCABULARY, b"ghost"])
    with pytest.raises(ValueError, match=r"does not know 1 of 61 vocabulary items .*'ghost'.*same run"):
        _run(model_artifact[0], transform_graph, tmp_path / "index", IndexSettings())


def test_executor_says_which_vocabulary_is_missing_and_where(model_artifact, tmp_path):
    transform_graph = _transform_graph(tmp_path / "transform", None)
    with pytest.raises(
        ValueError, match=r"no vocabulary 'item_counts' in the Transform output .*transform_fn/assets"
    ):
        _run(model_artifact[0], transform_graph, tmp_path / "index", IndexSettings())


def test_copy_index_writes_index_json_last(tmp_path, monkeypatch):
    source = tmp_path / "source"
    embeddings = np.eye(3, dtype=np.float32)
    settings = IndexSettings()
    searcher = index_lib.build_index(embeddings, settings)
    index_lib.save_index(searcher, ["a", "b", "c"], embeddings, str(source), settings, 1.0)
    copied = []
    copy = executor.fileio.copy

    def recording_copy(src, dst, overwrite):
        copied.append(dst)
        copy(src, dst, overwrite)

    monkeypatch.setattr(executor.fileio, "copy", recording_copy)
    executor.copy_index(str(source), str(tmp_path / "copy"))
    assert len(copied) == sum(len(names) for _, _, names in os.walk(source))
    assert copied[-1] == str(tmp_path / "copy" / "index.json")
    assert index_files.load_index(str(tmp_path / "copy"))[1] == ["a", "b", "c"]


def test_component_declares_its_artifacts_and_stores_settings_as_json():
    component = ScannIndexer(
        model=types.Channel(type=standard_artifacts.Model),
        transform_graph=types.Channel(type=standard_artifacts.TransformGraph),
        index_config=IndexSettings(num_neighbors=5, num_leaves=40),
    )
    assert component.outputs[executor.INDEX_KEY].type is ScannIndex
    assert ScannIndex.TYPE_NAME == "pin2vec.ScannIndex"
    stored = component.exec_properties[executor.INDEX_CONFIG_KEY]
    assert decode_settings(IndexSettings, stored, "index_config") == IndexSettings(
        num_neighbors=5, num_leaves=40
    )
    with pytest.raises(TypeError, match="index_config must be an IndexSettings; got dict"):
        ScannIndexer(
            model=types.Channel(type=standard_artifacts.Model),
            transform_graph=types.Channel(type=standard_artifacts.TransformGraph),
            index_config={"num_neighbors": 5},
        )
