"""Thin executor: training pairs (Examples, train split) -> co-occurrence candidate table, with Beam."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components.cooccurrence import cooccurrence_lib as lib
from formats import candidate_table
from formats.settings_codec import decode_settings
from trainer_module import features

EXAMPLES_KEY = "examples"
CANDIDATES_KEY = "candidates"
CONFIG_KEY = "cooccurrence_config"
SOURCE_NAME = "cooccurrence"


SCRATCH_DIR = ".beam_scratch"  # inside the output artifact while the Beam workers write their files there
CHUNK_PAIRS = 65_536  # pairs parsed and counted together
SHARDS = 8  # directed pairs are grouped by item into this many parts, each merged and ranked on its own


def _read_pair_chunks(file: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One TFRecord file of pairs -> (items, labels) fixed-width byte arrays, CHUNK_PAIRS at a time."""
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in (features.ITEM, features.LABEL)}
    compression = "GZIP" if file.endswith(".gz") else ""
    for batch in tf.data.TFRecordDataset(file, compression_type=compression).batch(CHUNK_PAIRS):
        parsed = tf.io.parse_example(batch, spec)
        yield (
            parsed[features.ITEM].numpy().astype(np.bytes_),
            parsed[features.LABEL].numpy().astype(np.bytes_),
        )


class _Vocabulary(beam.CombineFn):
    """Chunks -> the sorted unique item ids (the rows of the table). The accumulator is a list of sorted
    unique arrays merged as they grow (lib.unique_union), not a union with the whole vocabulary per chunk."""

    def create_accumulator(self) -> list[np.ndarray]:
        return []

    def add_input(self, vocabularies: list[np.ndarray], chunk: tuple[np.ndarray, np.ndarray]):
        return lib.unique_union(vocabularies, np.concatenate(chunk))

    def merge_accumulators(self, accumulators) -> list[np.ndarray]:
        merged: list[np.ndarray] = []
        for vocabularies in accumulators:
            for vocabulary in vocabularies:
                merged = lib.unique_union(merged, vocabulary)
        return merged

    def extract_output(self, vocabularies: list[np.ndarray]) -> np.ndarray:
        return np.unique(np.concatenate(vocabularies)) if vocabularies else np.zeros(0, np.bytes_)


class _MergeCounts(beam.CombineFn):
    """(keys, counts) chunks of one shard -> their sum, merged as they arrive (lib.add_counts): a lifted
    combine, so each worker sends the distinct keys it counted, not every chunk's, to the shuffle."""

    def create_accumulator(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return []

    def add_input(self, parts, part: tuple[np.ndarray, np.ndarray]):
        return lib.add_counts(parts, part)

    def merge_accumulators(self, accumulators):
        merged: list[tuple[np.ndarray, np.ndarray]] = []
        for parts in accumulators:
            for part in parts:
                merged = lib.add_counts(merged, part)
        return merged

    def extract_output(self, parts) -> tuple[np.ndarray, np.ndarray]:
        return lib.merge_pair_counts(parts)


class _SumArrays(beam.CombineFn):
    """Element-wise sum of equal-length arrays (an empty array when there are none)."""

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(0, np.int64)

    def add_input(self, total: np.ndarray, array: np.ndarray) -> np.ndarray:
        return total + array if len(total) else array.astype(np.int64)

    def merge_accumulators(self, totals) -> np.ndarray:
        merged = np.zeros(0, np.int64)
        for total in totals:
            merged = self.add_input(merged, total)
        return merged

    def extract_output(self, total: np.ndarray) -> np.ndarray:
        return total


def _rows(chunk: tuple[np.ndarray, np.ndarray], vocabulary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.searchsorted(vocabulary, chunk[0]), np.searchsorted(vocabulary, chunk[1])


def _sharded_counts(rows: tuple[np.ndarray, np.ndarray], vocabulary: np.ndarray) -> Iterator[tuple[int, Any]]:
    keys, counts = lib.directed_pair_counts(*rows, len(vocabulary))
    shard = (keys // len(vocabulary)) % SHARDS
    for s in range(SHARDS):
        mine = shard == s
        if mine.any():
            yield s, (keys[mine], counts[mine])


def _rank_shard(shard_counts, degrees: np.ndarray, vocabulary: np.ndarray, settings, out_dir: str) -> str:
    shard, (keys, counts) = shard_counts
    top = lib.top_candidate_rows(keys, counts, degrees, len(vocabulary), settings)
    path = os.path.join(out_dir, f"shard-{shard:05d}.npz")
    np.savez(path, **top._asdict())
    return path


def build_pipeline(
    p: beam.Pipeline, files: list[str], settings: lib.CooccurrenceSettings, out_dir: str
) -> None:
    """Pair files -> out_dir/vocabulary.npy, degrees.npy and one shard-*.npz of ranked candidates per shard.

    Pairs travel as numpy chunks, never one element per pair: a log of 20M events has ~80M pairs.
    """
    chunks = (
        p
        | "ListFiles" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "Read" >> beam.FlatMap(_read_pair_chunks)
    )
    vocabulary = beam.pvalue.AsSingleton(chunks | "Vocabulary" >> beam.CombineGlobally(_Vocabulary()))
    rows = chunks | "ToRows" >> beam.Map(_rows, vocabulary)
    degrees = beam.pvalue.AsSingleton(
        rows
        | "ChunkDegrees" >> beam.Map(lambda r, v: lib.pair_degrees(*r, len(v)), vocabulary)
        | "Degrees" >> beam.CombineGlobally(_SumArrays())
    )
    _ = (
        rows
        | "ShardedCounts" >> beam.FlatMap(_sharded_counts, vocabulary)
        | "MergeShards" >> beam.CombinePerKey(_MergeCounts())
        | "RankShards" >> beam.Map(_rank_shard, degrees, vocabulary, settings, out_dir)
    )
    for name, side in (("vocabulary", vocabulary), ("degrees", degrees)):
        _ = (
            p
            | f"Save[{name}]" >> beam.Create([None])
            | f"Write[{name}]"
            >> beam.Map(
                lambda _, array, name=name: np.save(os.path.join(out_dir, f"{name}.npy"), array), side
            )
        )


@contextlib.contextmanager
def worker_scratch_dir(artifact_uri: str) -> Iterator[str]:
    """A directory for the files the Beam workers write, under the output artifact and removed after.

    Not the launching process's /tmp: on Flink, Spark or Dataflow the workers run on other machines, which
    share the pipeline root with it (every artifact lives there), never its local disk.
    """
    scratch = os.path.join(artifact_uri, SCRATCH_DIR)
    os.makedirs(scratch, exist_ok=True)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def assemble_table(
    out_dir: str, settings: lib.RankingSettings, meta: dict, popularity_file: str = "degrees.npy"
) -> candidate_table.CandidateTable:
    """The pipeline's files -> one CandidateTable (rows = the sorted vocabulary); popularity from
    `popularity_file` (co-occurrences per item here; saves per item for boards)."""
    vocabulary = np.load(os.path.join(out_dir, "vocabulary.npy"), allow_pickle=False)
    degrees = np.load(os.path.join(out_dir, popularity_file), allow_pickle=False)
    neighbours = np.full((len(vocabulary), settings.top_n), -1, dtype=np.int32)
    scores = np.zeros((len(vocabulary), settings.top_n), dtype=np.float32)
    for name in sorted(os.listdir(out_dir)):
        if name.startswith("shard-"):
            with np.load(os.path.join(out_dir, name), allow_pickle=False) as top:
                neighbours[top["rows"], top["ranks"]] = top["candidates"]
                scores[top["rows"], top["ranks"]] = top["scores"]
    items = [item.decode("utf-8") for item in vocabulary]
    return candidate_table.CandidateTable(
        items, neighbours, scores, degrees.astype(np.int64), dict(meta, top_n=settings.top_n)
    )


class Executor(base_beam_executor.BaseBeamExecutor):
    """Examples (train split) -> `candidates` (a candidate table, see formats/candidate_table.py)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict, exec_properties: dict[str, Any]):
        self._log_startup(input_dict, output_dict, exec_properties)
        settings = decode_settings(lib.CooccurrenceSettings, exec_properties.get(CONFIG_KEY), CONFIG_KEY)
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        candidates = artifact_utils.get_single_instance(output_dict[CANDIDATES_KEY])
        files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], "train"), "*"))
        if not files:
            raise FileNotFoundError(f"no training pairs in {examples.uri} (split 'train')")
        with worker_scratch_dir(candidates.uri) as scratch:
            with self._make_beam_pipeline() as p:
                build_pipeline(p, sorted(files), settings, scratch)
            meta = {"source": SOURCE_NAME, **dataclasses.asdict(settings)}
            table = assemble_table(scratch, settings, meta)
        candidate_table.save_table(table, candidates.uri)
        candidates.set_int_custom_property("num_items", len(table.items))
        candidates.set_int_custom_property("top_n", table.top_n)
        logging.info("Co-occurrence candidates for %d items written to %s", len(table.items), candidates.uri)
