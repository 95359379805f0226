"""Thin executor: held-out queries + both ScaNN indexes + co-occurrence (and board) tables -> metrics, blend
table, report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components import code_version
from components.related_evaluator import (
    catalogue_lib,
    embedding_map_lib,
    evaluation_lib,
    metrics_lib,
    provenance_lib,
    report_html,
    report_markdown,
    rerank_lib,
    stability_lib,
)
from components.related_evaluator.catalogue_lib import Catalogue, Queries, Source
from components.related_evaluator.evaluator_config import EvaluatorConfig
from components.session_example_gen.run_counts import REPORTED_COUNTERS
from formats import candidate_table, coldstart, evaluation_result, titles
from formats.index_searcher import RelatedItemsSearcher
from formats.settings_codec import decode_settings
from trainer_module import features

EXAMPLES_KEY = "examples"
INDEX_KEY = "index"  # cosine between hidden layers: pin2vec_similar
NEXT_INDEX_KEY = "next_index"  # what the network predicts next: pin2vec (optional for older pipelines)
CANDIDATES_KEY = "candidates"
BOARD_KEY = "board"  # optional: the board co-occurrence table (items saved to the same collections)
COLDSTART_KEY = "coldstart"  # optional: every item engaged in the window, for the coverage figure
MODEL_RUN_KEY = "model_run"
EVALUATION_KEY = "evaluation"
BLEND_KEY = "blend"
CONFIG_KEY = "evaluation_config"
SERVING_DIR_KEY = "serving_base_dir"  # where the pusher publishes: the served version stability compares with

HISTORY_FILE = "history.json"
RERANK_MODEL_FILE = "rerank_model.json"  # the chosen reranker (JSON, never pickled), when it was chosen
SPLITS = {"validation": "eval", "test": "test"}  # report name -> Examples split
RERANK_SPLIT = "rerank"  # the blend's training queries (transitions before each user's validation one)
SEARCH_CHUNK = 4096
PARSE_BATCH = 8192
ROWS_BATCH = 8192  # records looked up per batch by split_rows (ids never reach Python)
READ_THREADS = 2  # files decompressed and batches parsed at once


def _split_files(examples: types.Artifact, split: str) -> list[str]:
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = tf.io.gfile.glob(pattern)
    if not files:
        raise FileNotFoundError(f"no '{split}' split under {examples.uri}: expected files matching {pattern}")
    return files


def split_batches(examples: types.Artifact, split: str, with_timestamp: bool) -> Iterator[tuple]:
    """(item ids, label ids[, timestamps]) of one Examples split, PARSE_BATCH records at a time."""
    spec = {
        features.ITEM: tf.io.FixedLenFeature([], tf.string),
        features.LABEL: tf.io.FixedLenFeature([], tf.string),
    }
    if with_timestamp:
        spec[features.TIMESTAMP] = tf.io.FixedLenFeature([], tf.int64)
    dataset = tf.data.TFRecordDataset(_split_files(examples, split), compression_type="GZIP")
    for batch in dataset.batch(PARSE_BATCH).map(lambda records: tf.io.parse_example(records, spec)):
        columns = [
            [i.decode("utf-8") for i in batch[k].numpy().tolist()] for k in (features.ITEM, features.LABEL)
        ]
        if with_timestamp:
            columns.append(batch[features.TIMESTAMP].numpy())
        yield tuple(columns)


def split_rows(examples: types.Artifact, split: str, catalogue: Catalogue, with_timestamp: bool) -> Iterator:
    """(item rows, label rows[, timestamps]) of one Examples split as int64 catalogue rows (-1: outside it),
    ROWS_BATCH records at a time. The ids are looked up in a hash table inside TensorFlow's input pipeline,
    files read in parallel: no Python string per record (30.7M training pairs at 20M events took minutes
    that way). Record order may differ from the files': callers count or sort."""
    spec = {
        features.ITEM: tf.io.FixedLenFeature([], tf.string),
        features.LABEL: tf.io.FixedLenFeature([], tf.string),
    }
    if with_timestamp:
        spec[features.TIMESTAMP] = tf.io.FixedLenFeature([], tf.int64)
    files = _split_files(examples, split)
    keys = np.char.encode(catalogue.ids, "utf-8") if len(catalogue) else np.array([b""])
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, dtype=tf.string),
            tf.range(len(keys), dtype=tf.int64) if len(catalogue) else tf.constant([-1], tf.int64),
        ),
        default_value=catalogue_lib.NONE,
    )

    def rows(records):
        parsed = tf.io.parse_example(records, spec)
        out = (table.lookup(parsed[features.ITEM]), table.lookup(parsed[features.LABEL]))
        return (*out, parsed[features.TIMESTAMP]) if with_timestamp else out

    parallel_reads = min(len(files), READ_THREADS)
    dataset = (
        tf.data.TFRecordDataset(
            files, compression_type="GZIP", num_parallel_reads=parallel_reads if parallel_reads > 1 else None
        )
        .batch(ROWS_BATCH)
        .map(rows, num_parallel_calls=READ_THREADS)
        .prefetch(READ_THREADS)
    )
    yield from dataset.as_numpy_iterator()


def read_queries(examples: types.Artifact, split: str, catalogue: Catalogue) -> Queries:
    """(item -> label) held-out pairs of one Examples split, as catalogue rows (-1: outside it)."""
    items, targets = [], []
    for item_rows, label_rows in split_rows(examples, split, catalogue, with_timestamp=False):
        items.append(item_rows)
        targets.append(label_rows)
    if not items:
        return catalogue_lib.no_queries()
    items_, targets_ = np.concatenate(items), np.concatenate(targets)
    order = np.lexsort((targets_, items_))
    return Queries(items_[order], targets_[order])


def read_training_queries(examples: types.Artifact, catalogue: Catalogue) -> Queries:
    """The rerank split's queries; none when the Examples predate it or it is empty (the blend is then tuned
    on validation)."""
    if RERANK_SPLIT not in artifact_utils.decode_split_names(examples.split_names):
        return catalogue_lib.no_queries()
    pattern = os.path.join(artifact_utils.get_split_uri([examples], RERANK_SPLIT), "*")
    return (
        read_queries(examples, RERANK_SPLIT, catalogue)
        if tf.io.gfile.glob(pattern)
        else catalogue_lib.no_queries()
    )


def read_pairs(examples: types.Artifact, split: str, catalogue: Catalogue) -> rerank_lib.TrainingPairs:
    """(item, label, label timestamp) of one Examples split as catalogue rows, parsed batch by batch."""
    return rerank_lib.pairs_from_rows(split_rows(examples, split, catalogue, with_timestamp=True))


def pin2vec_source(searcher: RelatedItemsSearcher, catalogue: Catalogue, top_n: int) -> Source:
    """Every indexed item's neighbours, exactly as the pushed index answers them, as catalogue rows."""
    return catalogue_lib.source_from_index(searcher, catalogue, top_n, SEARCH_CHUNK)


def cooccurrence_candidates(
    table: candidate_table.CandidateTable,
    searcher: RelatedItemsSearcher,
    top_n: int,
    similar: RelatedItemsSearcher | None = None,
    board: candidate_table.CandidateTable | None = None,
) -> evaluation_lib.Candidates:
    """Every source over the sorted union of the indexes' and the tables' items: `searcher` is the Pin2Vec
    source the blend fuses with co-occurrence; `similar` (the cosine index) and `board` (board co-occurrence),
    when given, are measured beside them."""
    indexed = [searcher.item_ids] + ([similar.item_ids] if similar is not None else [])
    boards = [board.items] if board is not None else []
    catalogue = catalogue_lib.catalogue_of(*indexed, table.items, *boards)
    table_rows = catalogue.rows(table.items)
    popularity = np.zeros(len(catalogue), dtype=np.int64)
    popularity[table_rows] = table.popularity
    counted = np.zeros(len(catalogue), dtype=bool)
    counted[table_rows] = True
    return evaluation_lib.Candidates(
        catalogue,
        pin2vec_source(searcher, catalogue, top_n),
        catalogue_lib.source_from_table(table, catalogue, top_n),
        popularity,
        counted,
        extra={
            # Only measured, never blended: searched for the rows read (the queries, stability, examples).
            **(
                {}
                if similar is None
                else {
                    "pin2vec_similar": catalogue_lib.SearchedSource(similar, catalogue, top_n, SEARCH_CHUNK)
                }
            ),
            **({} if board is None else {"board": catalogue_lib.source_from_table(board, catalogue, top_n)}),
        },
    )


def read_history(model_run: types.Artifact | None) -> dict | None:
    if model_run is None:
        return None
    path = os.path.join(model_run.uri, HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def read_titles(path: str) -> dict[str, str]:
    return titles.load_titles(path) if path else {}


def code_of_this_run(evaluator_version: str) -> dict:
    """The code behind the report: the git commit when the project is a git checkout, else the hash of the
    package's sources; and the evaluator's own code version (its cache key)."""
    commit = code_version.git_commit()
    code = (
        {"git_commit": commit[0], "git_dirty": commit[1]}
        if commit is not None
        else {"package_version": code_version.package_code_version()}
    )
    return {**code, "evaluator_version": evaluator_version}


def provenance_of(
    examples: types.Artifact,
    index: types.Artifact,
    candidates: types.Artifact,
    board: types.Artifact | None,
    run_settings: dict | None,
    evaluator_version: str,
    catalogue_size: int,
) -> dict:
    """The report's provenance from the input artifacts' custom properties (row counts, fingerprint, sizes)
    and the settings the pipeline passed in."""
    counts = {name: examples.get_custom_property(name) for name in REPORTED_COUNTERS}
    counts.update(
        vocabulary=index.get_custom_property("num_items"),
        embedding_dimensions=index.get_custom_property("dimensions"),
        cooccurrence_items=candidates.get_custom_property("num_items"),
        board_items=None if board is None else board.get_custom_property("num_items"),
        catalogue_size=catalogue_size,
    )
    return provenance_lib.build_provenance(
        settings=run_settings,
        counts={name: value for name, value in counts.items() if isinstance(value, int)},
        input_fingerprint=str(examples.get_custom_property("input_fingerprint") or ""),
        code=code_of_this_run(evaluator_version),
        written_at=provenance_lib.utc_now(),
    )


def embedding_map_of(
    searcher: RelatedItemsSearcher,
    catalogue: Catalogue,
    popularity: np.ndarray,
    examples: list[dict],
    titles: dict[str, str],
) -> dict:
    """The report's 2-D map of the cosine index's embeddings, bucketed as the report's queries are."""
    rows = catalogue.rows(list(searcher.item_ids))
    return embedding_map_lib.embedding_map(
        list(searcher.item_ids),
        searcher.vectors,
        metrics_lib.item_buckets(popularity)[rows],
        metrics_lib.BUCKETS,
        popularity[rows],
        first=[str(example["item"]) for example in examples],
        titled=titles.keys(),
    )


def window_coverage(cold: candidate_table.CandidateTable, best: str, answerable: dict) -> dict:
    """Coverage of the items engaged in the window (the coldstart table's rows) in the order serving follows
    from `best`: formats/coldstart.py."""
    answerable = dict(answerable, **{coldstart.COLDSTART_SOURCE: coldstart.answerable_items(cold)})
    return coldstart.coverage(cold.items, coldstart.fallback_chain(best), answerable)


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        config = decode_settings(EvaluatorConfig, exec_properties.get(CONFIG_KEY), CONFIG_KEY)
        settings, rerank_settings = config.blend, config.rerank
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        index = artifact_utils.get_single_instance(input_dict[INDEX_KEY])
        candidates = artifact_utils.get_single_instance(input_dict[CANDIDATES_KEY])
        model_run = (input_dict.get(MODEL_RUN_KEY) or [None])[0]
        evaluation = artifact_utils.get_single_instance(output_dict[EVALUATION_KEY])
        blend = artifact_utils.get_single_instance(output_dict[BLEND_KEY])

        similar = RelatedItemsSearcher(index.uri, max_k=settings.top_n)
        next_index = (input_dict.get(NEXT_INDEX_KEY) or [None])[0]
        table = candidate_table.load_table(candidates.uri)
        board = (input_dict.get(BOARD_KEY) or [None])[0]
        board_table = None if board is None else candidate_table.load_table(board.uri)
        next_searcher = None
        if next_index is None:  # a pipeline from before the next-engagement index: the cosine one is pin2vec
            candidates_ = cooccurrence_candidates(table, similar, settings.top_n, board=board_table)
        else:
            next_searcher = RelatedItemsSearcher(next_index.uri, max_k=settings.top_n)
            candidates_ = cooccurrence_candidates(
                table, next_searcher, settings.top_n, similar=similar, board=board_table
            )
        catalogue = candidates_.catalogue
        splits = {name: read_queries(examples, split, catalogue) for name, split in SPLITS.items()}
        training = read_training_queries(examples, catalogue)
        logging.info(
            "RelatedEvaluator: %d rerank (training), %d validation and %d test queries; %d catalogue items, "
            "%d with co-occurrences",
            len(training),
            len(splits["validation"]),
            len(splits["test"]),
            len(catalogue),
            int(candidates_.counted.sum()),
        )

        rerank_inputs = None
        if rerank_settings.enabled and len(training):
            pairs = read_pairs(examples, "train", catalogue)
            # The searchers' own arrays: the cosine index's unit rows, and the pin2vec index's hidden layers
            # (its queries) and softmax rows (what it indexes), both in the vocabulary's row order.
            hidden, softmax_rows = None, None
            if next_searcher is not None:
                if next_searcher.item_ids != similar.item_ids:
                    raise ValueError(f"the indexes {next_index.uri} and {index.uri} list different items")
                hidden, softmax_rows = next_searcher.query_vectors, next_searcher.vectors
            rerank_inputs = rerank_lib.RerankInputs(
                candidates_.pin2vec.ids,
                candidates_.cooccurrence.ids,
                similar.vectors,
                rerank_lib.vector_rows(catalogue, similar.item_ids),
                candidates_.popularity,
                rerank_lib.interaction_stats(pairs, len(catalogue), rerank_settings.recent_share),
                rerank_settings.pool_per_source,
                hidden,
                softmax_rows,
                board=None if "board" not in candidates_.extra else candidates_.extra["board"].ids,
            )
            del pairs
        result, blend_source, settings = evaluation_lib.evaluate_sources(
            splits, candidates_, settings, rerank_inputs, rerank_settings, training
        )
        best, weight, metrics = result["best_source"], result["blend"]["weight"], result["splits"]
        result[evaluation_result.STABILITY_KEY] = stability_lib.measure(
            exec_properties.get(SERVING_DIR_KEY) or None,
            catalogue,
            {**candidates_.unblended(), "blend": blend_source},
            candidates_.popularity,
            best,
        )
        method = result["blend"]["method"]
        cooccurrence_table = table
        table = candidate_table.from_arrays(
            catalogue.ids.tolist(),
            blend_source.ids,
            blend_source.scores,
            candidates_.popularity,
            meta={"source": "blend", "method": method, "weight": weight, "rrf_k": settings.rrf_k},
        )
        candidate_table.save_table(table, blend.uri)
        cold = (input_dict.get(COLDSTART_KEY) or [None])[0]
        if cold is not None:
            answerable = {
                "pin2vec": frozenset((next_searcher or similar).item_ids),
                "pin2vec_similar": frozenset(similar.item_ids),
                "cooccurrence": coldstart.answerable_items(cooccurrence_table),
                "board": frozenset() if board_table is None else coldstart.answerable_items(board_table),
                "blend": coldstart.answerable_items(table),
            }
            result[evaluation_result.COVERAGE_KEY] = window_coverage(
                candidate_table.load_table(cold.uri), best, answerable
            )
        os.makedirs(evaluation.uri, exist_ok=True)
        if method == "rerank":
            with open(os.path.join(evaluation.uri, RERANK_MODEL_FILE), "w", encoding="utf-8") as f:
                json.dump(result["blend"]["rerank"]["model"], f, indent=1)
        history, titles = read_history(model_run), read_titles(config.titles_path)
        result["embedding_map"] = embedding_map_of(
            similar, catalogue, candidates_.popularity, result["examples"], titles
        )
        result["provenance"] = provenance_of(
            examples,
            index,
            candidates,
            board,
            config.run_settings,
            str(exec_properties.get(code_version.CODE_VERSION_KEY) or ""),
            len(catalogue),
        )
        evaluation_result.write_evaluation(evaluation.uri, result)
        with open(os.path.join(evaluation.uri, evaluation_result.REPORT_HTML), "w", encoding="utf-8") as f:
            f.write(report_html.render_html(result, history, titles))
        with open(
            os.path.join(evaluation.uri, evaluation_result.REPORT_MARKDOWN), "w", encoding="utf-8"
        ) as f:
            f.write(report_markdown.render_markdown(result, history, titles))

        evaluation.set_string_custom_property("best_source", best)
        evaluation.set_float_custom_property("blend_weight", weight)
        evaluation.set_string_custom_property("blend_method", method)
        overlap = result[evaluation_result.STABILITY_KEY]["overlap_at_10"]
        if overlap is not None:
            evaluation.set_float_custom_property("neighbour_overlap_at_10", overlap)
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
            os.path.join(evaluation.uri, evaluation_result.REPORT_HTML),
        )
