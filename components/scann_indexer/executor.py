"""ScannIndexer executor: artifacts in, `index_lib` calls, artifacts out. The algorithm lives in index_lib."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.scann_indexer import index_lib
from formats import index_files
from formats.settings_codec import decode_settings
from trainer_module import features, vocabulary_file

# Keys of the component spec.
MODEL_KEY = "model"
TRANSFORM_GRAPH_KEY = "transform_graph"
INDEX_KEY = "index"  # cosine between hidden layers: the `pin2vec_similar` source
NEXT_INDEX_KEY = "next_index"  # hidden layer x softmax rows: the `pin2vec` source
INDEX_CONFIG_KEY = "index_config"

# Custom properties of the output `ScannIndex` artifact; the pusher reads BLESSED_PROPERTY.
RECALL_PROPERTY = "recall_at_k"
K_PROPERTY = "k"
NUM_ITEMS_PROPERTY = "num_items"
DIMENSIONS_PROPERTY = "dimensions"
BLESSED_PROPERTY = "blessed"
SCORER_PROPERTY = "scorer"

_EMBED_BATCH_SIZE = 4096
_LOG_EVERY_BATCHES = 50


class Executor(base_executor.BaseExecutor):
    """Embeds every vocabulary item with the exported model and writes two indexes, each checked for recall:
    `next_index` (the `pin2vec` source: items by their softmax rows, queried with hidden layers, maximum inner
    product) and `index` (the `pin2vec_similar` source: cosine between hidden layers)."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        settings = decode_settings(
            index_lib.IndexSettings, exec_properties.get(INDEX_CONFIG_KEY), INDEX_CONFIG_KEY
        )
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        transform_graph = artifact_utils.get_single_instance(input_dict[TRANSFORM_GRAPH_KEY])

        item_ids = read_vocabulary(transform_graph.uri)
        model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        network = index_lib.embed_items(
            SignatureEmbedder(model_dir), item_ids, batch_size=_EMBED_BATCH_SIZE, log_every=_LOG_EVERY_BATCHES
        )
        hidden, rows, biases = split_network_rows(network)
        similar = artifact_utils.get_single_instance(output_dict[INDEX_KEY])
        build_and_record(similar, item_ids, hidden, settings, None, index_lib.SIMILAR_SCORER)

        indexed, queries = index_lib.next_engagement_vectors(
            hidden, rows, biases, with_bias=features.NEXT_SCORE_USES_BIAS
        )
        next_settings = dataclasses.replace(settings, normalize=False)
        next_index = artifact_utils.get_single_instance(output_dict[NEXT_INDEX_KEY])
        build_and_record(next_index, item_ids, indexed, next_settings, queries, index_lib.NEXT_SCORER)


def build_and_record(
    index: types.Artifact,
    item_ids: list[str],
    vectors: np.ndarray,
    settings: index_lib.IndexSettings,
    queries: np.ndarray | None,
    scorer: str,
) -> None:
    """Builds, tunes and saves one index into `index.uri`, and records its recall and blessing on it."""
    searcher = index_lib.build_index(vectors, settings)
    settings, recall = index_lib.tune_leaves_to_search(searcher, vectors, settings, queries)
    metadata = save_to_uri(searcher, item_ids, vectors, index.uri, settings, recall, queries, scorer)
    blessed = index_lib.is_blessed(recall, settings)
    index.set_float_custom_property(RECALL_PROPERTY, recall)
    index.set_int_custom_property(K_PROPERTY, metadata["k"])
    index.set_int_custom_property(NUM_ITEMS_PROPERTY, metadata["num_items"])
    index.set_int_custom_property(DIMENSIONS_PROPERTY, metadata["dimensions"])
    index.set_int_custom_property(BLESSED_PROPERTY, int(blessed))
    index.set_string_custom_property(SCORER_PROPERTY, scorer)
    if blessed:
        logging.info(
            "ScaNN %s index blessed: recall@%d %.4f >= min_recall %.4f",
            scorer,
            metadata["k"],
            recall,
            settings.min_recall,
        )
    else:
        # Not an error: the run stays inspectable in ML Metadata; the pusher refuses unblessed indexes.
        logging.warning(
            "ScaNN %s index NOT blessed: recall@%d = %.4f is below min_recall = %.4f, so the pusher will "
            "not push it. Search more leaves (num_leaves_to_search) or rescore more candidates "
            "(reorder_multiplier).",
            scorer,
            metadata["k"],
            recall,
            settings.min_recall,
        )


def read_vocabulary(transform_graph_uri: str) -> list[str]:
    """The item ids of the Transform vocabulary (`trainer_module.vocabulary_file`), most frequent first."""
    item_ids, _ = vocabulary_file.read_vocabulary(tft.TFTransformOutput(transform_graph_uri))
    if not item_ids:
        raise ValueError(f"vocabulary {features.VOCABULARY_COUNTS!r} in {transform_graph_uri} is empty")
    return [index_files.decode_item_id(raw) for raw in item_ids]


class SignatureEmbedder:
    """Holds the loaded SavedModel: it owns the tables and variables that its signature reads."""

    def __init__(self, model_dir: str):
        self._model_dir = model_dir
        self._loaded = tf.saved_model.load(model_dir)
        if features.SERVING_SIGNATURE not in self._loaded.signatures:
            raise ValueError(
                f"SavedModel {model_dir} has no signature {features.SERVING_SIGNATURE!r} (it has "
                f"{sorted(self._loaded.signatures)}); expected the export of trainer_module.export"
            )
        self._signature = self._loaded.signatures[features.SERVING_SIGNATURE]

    def __call__(self, item_ids: list[str]) -> np.ndarray:
        """[n, 2 * dim + 1]: each item's hidden layer, softmax row and softmax bias side by side, from one
        pass through the signature per batch (`split_network_rows` takes them apart)."""
        raw = tf.constant([index_files.encode_item_id(item_id) for item_id in item_ids], dtype=tf.string)
        outputs = self._signature(**{features.SERVING_INPUT: raw})
        needed = (features.SERVING_OUTPUT, features.SOFTMAX_ROW_OUTPUT, features.SOFTMAX_BIAS_OUTPUT)
        missing = [name for name in needed if name not in outputs]
        if missing:
            raise ValueError(
                f"signature {features.SERVING_SIGNATURE!r} of {self._model_dir} returns {sorted(outputs)}; "
                f"expected {missing} too (models exported before the softmax rows were exported cannot build "
                "the pin2vec index: retrain)"
            )
        if features.KNOWN_OUTPUT in outputs:
            unknown = np.flatnonzero(~outputs[features.KNOWN_OUTPUT].numpy())
            if unknown.size:
                raise ValueError(
                    f"the model {self._model_dir} does not know {unknown.size} of {len(item_ids)} vocabulary "
                    f"items in this batch (e.g. {[item_ids[i] for i in unknown[:5]]}); every item of the "
                    "Transform vocabulary should be in the model's: were model and transform_graph made by "
                    "the same run?"
                )
        hidden, rows, biases = (outputs[name].numpy() for name in needed)
        return np.hstack([hidden, rows, biases[:, np.newaxis]])


def split_network_rows(network: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`SignatureEmbedder`'s side-by-side rows -> (hidden layers, softmax rows, softmax biases)."""
    dim = (network.shape[1] - 1) // 2
    return network[:, :dim], network[:, dim : 2 * dim], network[:, 2 * dim]


def save_to_uri(
    searcher,
    item_ids,
    embeddings,
    uri: str,
    settings,
    recall: float,
    queries=None,
    scorer=index_lib.SIMILAR_SCORER,
) -> dict[str, Any]:
    """`index_lib.save_index` into `uri`; a remote URI (gs://...) is staged locally (ScaNN writes files)."""
    if "://" not in uri:
        return index_lib.save_index(searcher, item_ids, embeddings, uri, settings, recall, queries, scorer)
    with tempfile.TemporaryDirectory() as staging:
        local = os.path.join(staging, "index")
        metadata = index_lib.save_index(
            searcher, item_ids, embeddings, local, settings, recall, queries, scorer
        )
        copy_index(local, uri)
    return metadata


def copy_index(source: str, destination: str) -> None:
    """Copies an index directory with tfx fileio; index.json last, so it still marks a complete copy."""
    files = []
    for root, _, names in os.walk(source):
        files.extend(os.path.relpath(os.path.join(root, name), source) for name in names)
    files.sort(key=lambda path: path == index_files.METADATA_FILE)
    for relative in files:
        target = os.path.join(destination, relative)
        fileio.makedirs(os.path.dirname(target))
        fileio.copy(os.path.join(source, relative), target, overwrite=True)
