"""Thin executor: collections (board, item[, time] rows) -> board co-occurrence candidate table, with Beam.

Rows are read, parsed and quarantined exactly as SessionExampleGen reads events (the board is the "user");
saves are grouped per board, each board's runs become weighted pairs (board_lib), pairs are merged and ranked
per item shard as numpy arrays, never one Beam element per pair.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor

from components.board_cooccurrence import board_lib
from components.cooccurrence import table_steps
from components.cooccurrence.executor import assemble_table, worker_scratch_dir
from components.session_example_gen import input_files, run_counts, session_settings
from components.session_example_gen.executor import (
    keep_quarantine,
    kept_quarantine_file,
    read_events,
    read_metrics,
)
from formats import candidate_table
from formats.settings_codec import decode_settings

COLLECTIONS_PATH_KEY = "collections_path"
SOURCE_CONFIG_KEY = "source_config"  # JSON of the EventSource fields naming the board, item and time columns
CONFIG_KEY = "board_config"
INPUT_FINGERPRINT_KEY = "input_fingerprint"
CANDIDATES_KEY = "candidates"
QUARANTINE_KEY = "quarantine"
QUARANTINE_FILE = "quarantine.jsonl"
SOURCE_NAME = "board"
SHARDS = 8


def _saves_by_board(events: list[tuple]) -> Iterator[tuple[str, tuple[str, int]]]:
    for board, item, timestamp, *_ in events:
        yield board, (item, timestamp)


def _board_pairs(board_saves, vocabulary: np.ndarray, settings: board_lib.BoardSettings):
    """(shard, (keys, weights)) of one board's runs."""
    _, saves = board_saves
    for run in board_lib.board_runs(saves, settings.max_board_size):
        rows = np.searchsorted(vocabulary, np.array([i.encode("utf-8") for i in run], dtype=np.bytes_))
        keys, weights = board_lib.run_pair_weights(rows, len(vocabulary), settings.board_size_exponent)
        shard = (keys // len(vocabulary)) % SHARDS
        for s in np.unique(shard):
            mine = shard == s
            yield int(s), (keys[mine], weights[mine])


def build_pipeline(
    p: beam.Pipeline,
    files: list[str],
    source: session_settings.EventSource,
    settings: board_lib.BoardSettings,
    quarantine_file: str,
    out_dir: str,
) -> None:
    """Collection files -> out_dir/vocabulary.npy, saves.npy and shard-*.npz of ranked candidates."""
    events = read_events(p, files, source, quarantine_file)
    item_saves = events | "ItemSaves" >> beam.CombineGlobally(table_steps.ItemCounts())
    vocabulary = beam.pvalue.AsSingleton(item_saves | "Vocabulary" >> beam.Map(lambda vs: vs[0]))
    merged = (
        events
        | "KeyByBoard" >> beam.FlatMap(_saves_by_board)
        | "GroupByBoard" >> beam.GroupByKey()
        | "BoardPairs" >> beam.FlatMap(_board_pairs, vocabulary, settings)
        | "GroupByShard" >> beam.GroupByKey()
        | "Merge" >> beam.Map(lambda kv: (kv[0], board_lib.merge_weights(kv[1])))
    )
    degrees = beam.pvalue.AsSingleton(
        merged
        | "ShardDegrees" >> beam.Map(lambda kv, v: board_lib.degrees(*kv[1], len(v)), vocabulary)
        | "Degrees" >> beam.CombineGlobally(table_steps.sum_arrays)
    )
    _ = merged | "Rank" >> beam.Map(table_steps.rank_shard, degrees, vocabulary, settings, out_dir)
    for position, name in enumerate(("vocabulary", "saves")):
        _ = item_saves | f"Write[{name}]" >> beam.Map(
            lambda arrays, position=position, name=name: np.save(
                os.path.join(out_dir, f"{name}.npy"), arrays[position]
            )
        )


class Executor(base_beam_executor.BaseBeamExecutor):
    """Collections -> `candidates` (a candidate table, formats/candidate_table.py) + `quarantine`."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict, exec_properties: dict[str, Any]):
        self._log_startup(input_dict, output_dict, exec_properties)
        path = exec_properties[COLLECTIONS_PATH_KEY]
        source = source_from_json(path, exec_properties[SOURCE_CONFIG_KEY])
        settings = decode_settings(board_lib.BoardSettings, exec_properties.get(CONFIG_KEY), CONFIG_KEY)
        candidates = output_dict[CANDIDATES_KEY][0]
        quarantine = output_dict[QUARANTINE_KEY][0]
        files = input_files.list_input_files(path)
        input_files.check_input_files(files, source)
        quarantine_file = os.path.join(quarantine.uri, QUARANTINE_FILE)
        with worker_scratch_dir(candidates.uri) as scratch:
            with self._make_beam_pipeline() as p:
                build_pipeline(p, files, source, settings, quarantine_file, scratch)
            counts = read_metrics(p.result)
            if run_counts.too_many_bad_rows(counts, settings.max_bad_share):  # fails, naming the kept copy
                quarantine_file = keep_quarantine(quarantine_file, kept_quarantine_file(quarantine.uri))
            check_counts(path, counts, settings, quarantine_file)
            meta = {"source": SOURCE_NAME, **dataclasses.asdict(settings)}
            table = assemble_table(scratch, settings, meta, popularity_file="saves.npy")
        candidate_table.save_table(table, candidates.uri)
        candidates.set_int_custom_property("num_items", len(table.items))
        candidates.set_int_custom_property("top_n", table.top_n)
        for name in ("rows_read", "bad_rows"):
            quarantine.set_int_custom_property(name, counts.get(name, 0))
        logging.info(
            "Board co-occurrence for %d items from %s (%s) written to %s",
            len(table.items),
            path,
            run_counts.summary(counts),
            candidates.uri,
        )


def source_to_json(source: session_settings.EventSource) -> str:
    """The columns to read (everything but the path, which travels as its own property)."""
    return json.dumps({k: v for k, v in dataclasses.asdict(source).items() if k != "path"}, sort_keys=True)


def source_from_json(path: str, text: str) -> session_settings.EventSource:
    fields = json.loads(text)
    fields["actions"] = tuple(fields.get("actions", ()))
    return session_settings.EventSource(path=path, **fields)


def check_counts(
    path: str, counts: dict[str, int], settings: board_lib.BoardSettings, quarantine: str
) -> None:
    """Fails a run whose collections read nothing or too many malformed rows, naming the quarantine file."""
    rows, bad = counts.get("rows_read", 0), counts.get("bad_rows", 0)
    if rows == 0 or counts.get("events_read", 0) == 0:
        raise ValueError(f"no collection rows read from {path!r} (--collections)")
    if run_counts.too_many_bad_rows(counts, settings.max_bad_share):
        raise ValueError(
            f"{bad} of {rows} collection rows ({bad / rows:.2%}) of {path!r} are malformed, more than "
            f"max_bad_share={settings.max_bad_share:.2%}; the bad rows are listed in {quarantine}"
        )
