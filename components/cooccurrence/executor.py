"""Thin executor: training pairs (Examples, train split) -> co-occurrence candidate table, with Beam."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components import candidate_table
from components.cooccurrence import cooccurrence_lib as lib
from trainer_module import features

EXAMPLES_KEY = "examples"
CANDIDATES_KEY = "candidates"
CONFIG_KEY = "cooccurrence_config"
SOURCE_NAME = "cooccurrence"


def settings_from_json(text: str) -> lib.CooccurrenceSettings:
    return lib.CooccurrenceSettings(**json.loads(text or "{}"))


def _pair(serialized: bytes) -> tuple[str, str]:
    example = tf.train.Example.FromString(serialized)
    feature = example.features.feature
    return (
        feature[features.ITEM].bytes_list.value[0].decode("utf-8"),
        feature[features.LABEL].bytes_list.value[0].decode("utf-8"),
    )


def _top(item_counts: tuple[str, Any], degrees: dict[str, int], settings: lib.CooccurrenceSettings) -> str:
    item, counts = item_counts
    return json.dumps([item, degrees[item], lib.top_candidates(counts, degrees, settings)])


def build_pipeline(
    p: beam.Pipeline, pattern: str, settings: lib.CooccurrenceSettings, out_prefix: str
) -> None:
    counts = (
        p
        | "ReadPairs" >> beam.io.ReadFromTFRecord(pattern)
        | "Parse" >> beam.Map(_pair)
        | "BothDirections" >> beam.FlatMap(lambda pair: lib.both_directions(*pair))
        | "CountPairs" >> beam.combiners.Count.PerElement()
    )
    degrees = (
        counts | "ByItem" >> beam.Map(lambda pc: (pc[0][0], pc[1])) | "Degree" >> beam.CombinePerKey(sum)
    )
    _ = (
        counts
        | "KeyByItem" >> beam.Map(lambda pc: (pc[0][0], (pc[0][1], pc[1])))
        | "GroupByItem" >> beam.GroupByKey()
        | "TopN" >> beam.Map(_top, beam.pvalue.AsDict(degrees), settings)
        | "Write" >> beam.io.WriteToText(out_prefix, file_name_suffix=".jsonl")
    )


def _read_lists(directory: str) -> Iterator[tuple[str, int, list]]:
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            for line in f:
                item, degree, ranked = json.loads(line)
                yield item, degree, [(c, s) for c, s in ranked]


class Executor(base_beam_executor.BaseBeamExecutor):
    """Examples (train split) -> `candidates` (a candidate table, see components/candidate_table.py)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict, exec_properties: dict[str, Any]):
        self._log_startup(input_dict, output_dict, exec_properties)
        settings = settings_from_json(exec_properties.get(CONFIG_KEY, ""))
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        candidates = artifact_utils.get_single_instance(output_dict[CANDIDATES_KEY])
        pattern = os.path.join(artifact_utils.get_split_uri([examples], "train"), "*")
        with tempfile.TemporaryDirectory() as scratch:
            with self._make_beam_pipeline() as p:
                build_pipeline(p, pattern, settings, os.path.join(scratch, "lists"))
            lists, popularity = {}, {}
            for item, degree, ranked in _read_lists(scratch):
                lists[item], popularity[item] = ranked, degree
        table = candidate_table.from_lists(
            lists, popularity, settings.top_n, meta={"source": SOURCE_NAME, **dataclasses.asdict(settings)}
        )
        candidate_table.save_table(table, candidates.uri)
        candidates.set_int_custom_property("num_items", len(table.items))
        candidates.set_int_custom_property("top_n", table.top_n)
        logging.info("Co-occurrence candidates for %d items written to %s", len(lists), candidates.uri)
