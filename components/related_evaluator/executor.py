"""Thin executor: held-out queries + ScaNN index + co-occurrence table -> metrics, blend table, report."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components import candidate_table
from components.related_evaluator import blend_lib, evaluation_lib, report_lib, rerank_lib
from components.related_evaluator.metrics_lib import Query
from components.scann_indexer import index_lib
from serving.index_searcher import RelatedItemsSearcher
from trainer_module import features

EXAMPLES_KEY = "examples"
INDEX_KEY = "index"
CANDIDATES_KEY = "candidates"
MODEL_RUN_KEY = "model_run"
EVALUATION_KEY = "evaluation"
BLEND_KEY = "blend"
CONFIG_KEY = "evaluation_config"

EVALUATION_FILE = "evaluation.json"
REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
HISTORY_FILE = "history.json"
RERANK_MODEL_FILE = "rerank_model.json"  # the chosen reranker (JSON, never pickled), when it was chosen
SPLITS = {"validation": "eval", "test": "test"}  # report name -> Examples split
RERANK_SPLIT = "rerank"  # the blend's training queries (transitions before each user's validation one)
SEARCH_CHUNK = 4096
PARSE_BATCH = 8192


def read_queries(examples: types.Artifact, split: str) -> list[Query]:
    """(item -> label) held-out pairs of one Examples split."""
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = tf.io.gfile.glob(pattern)
    if not files:
        raise FileNotFoundError(f"no '{split}' split under {examples.uri}: expected files matching {pattern}")
    queries = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        queries.append(
            Query(
                feature[features.ITEM].bytes_list.value[0].decode("utf-8"),
                feature[features.LABEL].bytes_list.value[0].decode("utf-8"),
            )
        )
    return sorted(queries, key=lambda q: (q.item, q.target))


def read_training_queries(examples: types.Artifact) -> list[Query]:
    """The rerank split's queries; none when the Examples predate it or it is empty (the blend is then tuned
    on validation)."""
    if RERANK_SPLIT not in artifact_utils.decode_split_names(examples.split_names):
        return []
    pattern = os.path.join(artifact_utils.get_split_uri([examples], RERANK_SPLIT), "*")
    return read_queries(examples, RERANK_SPLIT) if tf.io.gfile.glob(pattern) else []


def read_pairs(examples: types.Artifact, split: str) -> list[tuple[str, str, int]]:
    """(item, label, label timestamp) of one Examples split, parsed in batches (fast enough for millions)."""
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = tf.io.gfile.glob(pattern)
    if not files:
        raise FileNotFoundError(f"no '{split}' split under {examples.uri}: expected files matching {pattern}")
    spec = {
        features.ITEM: tf.io.FixedLenFeature([], tf.string),
        features.LABEL: tf.io.FixedLenFeature([], tf.string),
        features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    }
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(PARSE_BATCH)
    pairs: list[tuple[str, str, int]] = []
    for batch in dataset.map(lambda records: tf.io.parse_example(records, spec)):
        items = [i.decode("utf-8") for i in batch[features.ITEM].numpy().tolist()]
        labels = [i.decode("utf-8") for i in batch[features.LABEL].numpy().tolist()]
        pairs.extend(zip(items, labels, batch[features.TIMESTAMP].numpy().tolist(), strict=True))
    return pairs


def pin2vec_lists(searcher: RelatedItemsSearcher, k: int) -> dict[str, list[tuple[str, float]]]:
    """Every indexed item's neighbours, exactly as the pushed index answers them."""
    items = list(searcher.item_ids)
    k = min(k, searcher.max_k)
    lists: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, len(items), SEARCH_CHUNK):
        lists.update(searcher.related(items[start : start + SEARCH_CHUNK], k))
    return lists


def read_history(model_run: types.Artifact | None) -> dict | None:
    if model_run is None:
        return None
    path = os.path.join(model_run.uri, HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def read_titles(path: str) -> dict[str, str]:
    if not path:
        return {}
    from engagement_data.movielens import load_titles

    return load_titles(path)


def settings_from_json(text: str) -> tuple[blend_lib.BlendSettings, rerank_lib.RerankSettings, str]:
    config = json.loads(text or "{}")
    return (
        blend_lib.BlendSettings(**config.get("blend", {})),
        rerank_lib.RerankSettings(**config.get("rerank", {})),
        config.get("titles_path", ""),
    )


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        settings, rerank_settings, titles_path = settings_from_json(exec_properties.get(CONFIG_KEY, ""))
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        index = artifact_utils.get_single_instance(input_dict[INDEX_KEY])
        candidates = artifact_utils.get_single_instance(input_dict[CANDIDATES_KEY])
        model_run = (input_dict.get(MODEL_RUN_KEY) or [None])[0]
        evaluation = artifact_utils.get_single_instance(output_dict[EVALUATION_KEY])
        blend = artifact_utils.get_single_instance(output_dict[BLEND_KEY])

        cooccurrence = candidate_table.load_table(candidates.uri)
        cooccurrence_lists = {
            item: cooccurrence.candidates(item, settings.top_n) for item in cooccurrence.items
        }
        popularity = dict(zip(cooccurrence.items, cooccurrence.popularity.tolist(), strict=True))
        embedding_lists = pin2vec_lists(RelatedItemsSearcher(index.uri, max_k=settings.top_n), settings.top_n)
        splits = {name: read_queries(examples, split) for name, split in SPLITS.items()}
        training = read_training_queries(examples)
        logging.info(
            "RelatedEvaluator: %d rerank (training), %d validation and %d test queries; %d indexed items, "
            "%d with co-occurrences",
            len(training),
            len(splits["validation"]),
            len(splits["test"]),
            len(embedding_lists),
            len(cooccurrence_lists),
        )

        rerank_inputs = None
        if rerank_settings.enabled:
            vector_ids, vectors, _ = index_lib.load_vectors(index.uri)
            rerank_inputs = rerank_lib.RerankInputs(
                embedding_lists,
                cooccurrence_lists,
                vector_ids,
                vectors,
                popularity,
                rerank_lib.interaction_stats(read_pairs(examples, "train"), rerank_settings.recent_share),
                rerank_settings.pool_per_source,
            )
        result, blend_lists, settings = evaluation_lib.evaluate_sources(
            splits,
            embedding_lists,
            cooccurrence_lists,
            popularity,
            settings,
            rerank_inputs,
            rerank_settings,
            training,
        )
        best, weight, metrics = result["best_source"], result["blend"]["weight"], result["splits"]
        method = result["blend"]["method"]
        table = candidate_table.from_lists(
            blend_lists,
            popularity,
            settings.top_n,
            meta={"source": "blend", "method": method, "weight": weight, "rrf_k": settings.rrf_k},
        )
        candidate_table.save_table(table, blend.uri)
        os.makedirs(evaluation.uri, exist_ok=True)
        if method == "rerank":
            with open(os.path.join(evaluation.uri, RERANK_MODEL_FILE), "w", encoding="utf-8") as f:
                json.dump(result["blend"]["rerank"]["model"], f, indent=1)
        with open(os.path.join(evaluation.uri, EVALUATION_FILE), "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        history, titles = read_history(model_run), read_titles(titles_path)
        with open(os.path.join(evaluation.uri, REPORT_HTML), "w", encoding="utf-8") as f:
            f.write(report_lib.render_html(result, history, titles))
        with open(os.path.join(evaluation.uri, REPORT_MARKDOWN), "w", encoding="utf-8") as f:
            f.write(report_lib.render_markdown(result, history, titles))

        evaluation.set_string_custom_property("best_source", best)
        evaluation.set_float_custom_property("blend_weight", weight)
        evaluation.set_string_custom_property("blend_method", method)
        for split, by_source in metrics.items():
            for name, values in by_source.items():
                evaluation.set_float_custom_property(
                    f"{split}_{name}_hit_rate_at_10", values["hit_rate"]["10"]
                )
        logging.info(
            "RelatedEvaluator: test HR@10 %s; best source by validation: %s (blend %s, RRF weight %.2f); "
            "report %s",
            ", ".join(f"{n}={m['hit_rate']['10']:.4f}" for n, m in metrics["test"].items()),
            best,
            method,
            weight,
            os.path.join(evaluation.uri, REPORT_HTML),
        )
