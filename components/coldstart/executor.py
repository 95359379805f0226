"""Thin executor: the engagement log's events -> the `coldstart` candidate table, with Beam.

Events are read and parsed as SessionExampleGen reads them (its malformed rows are already quarantined and
counted there, so this step's copy of them stays in scratch), grouped per user, cut into the same sessions,
and the pairs counted, merged and ranked per item shard as numpy arrays, as CooccurrenceCandidates does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor

from components.coldstart import coldstart_lib as lib
from components.cooccurrence import cooccurrence_lib, table_steps
from components.cooccurrence.executor import assemble_table, worker_scratch_dir
from components.session_example_gen import input_files, session_settings, spans_lib
from components.session_example_gen.executor import SPAN_SELECTION_KEY, read_events
from formats import candidate_table
from formats.settings_codec import decode_settings

INPUT_PATH_KEY = "input_path"
INPUT_CONFIG_KEY = "input_config"  # SessionExampleGen's: EventSource + SessionSettings, as JSON
INPUT_FINGERPRINT_KEY = "input_fingerprint"
CONFIG_KEY = "cooccurrence_config"
CANDIDATES_KEY = "candidates"
EXAMPLES_KEY = "examples"
SHARDS = 8
USERS_PER_BATCH = 1024  # users' pairs counted together, so elements stay few and large


def _by_user(events: list[tuple]) -> Iterator[tuple[str, list[tuple]]]:
    grouped: dict[str, list[tuple]] = {}
    for event in events:
        grouped.setdefault(event[0], []).append(event)
    yield from grouped.items()


def _sharded_counts(rows, vocabulary: np.ndarray) -> Iterator[tuple[int, Any]]:
    items, labels = rows
    keys, counts = cooccurrence_lib.directed_pair_counts(items, labels, len(vocabulary))
    shard = (keys // len(vocabulary)) % SHARDS
    for s in np.unique(shard):
        mine = shard == s
        yield int(s), (keys[mine], counts[mine])


def _shard_degrees(shard_counts, vocabulary: np.ndarray) -> np.ndarray:
    """Co-occurrences per vocabulary row in one shard (directed keys: the item side counts every pair)."""
    keys, counts = shard_counts[1]
    return np.bincount(keys // len(vocabulary), weights=counts, minlength=len(vocabulary)).astype(np.int64)


def build_pipeline(
    p: beam.Pipeline,
    files: list[str],
    source: session_settings.EventSource,
    sessions: session_settings.SessionSettings,
    settings: cooccurrence_lib.CooccurrenceSettings,
    out_dir: str,
) -> None:
    """Event files -> out_dir/vocabulary.npy, engagements.npy and shard-*.npz of ranked candidates."""
    events = read_events(p, files, source, os.path.join(out_dir, "quarantine.jsonl"))
    engagements = events | "Engagements" >> beam.CombineGlobally(table_steps.ItemCounts())
    vocabulary = beam.pvalue.AsSingleton(engagements | "Vocabulary" >> beam.Map(lambda arrays: arrays[0]))
    gap = None if source.sessions else sessions.session_gap_seconds
    merged = (
        events
        | "KeyByUser" >> beam.FlatMap(_by_user)
        | "GroupByUser" >> beam.GroupByKey()
        | "BatchUsers" >> beam.BatchElements(min_batch_size=USERS_PER_BATCH, max_batch_size=USERS_PER_BATCH)
        | "UserPairs" >> beam.Map(lib.batch_pair_rows, vocabulary, gap, sessions.window)
        | "ShardedCounts" >> beam.FlatMap(_sharded_counts, vocabulary)
        | "GroupByShard" >> beam.GroupByKey()
        | "Merge" >> beam.Map(lambda kv: (kv[0], cooccurrence_lib.merge_pair_counts(kv[1])))
    )
    degrees = beam.pvalue.AsSingleton(
        merged
        | "ShardDegrees" >> beam.Map(_shard_degrees, vocabulary)
        | "Degrees" >> beam.CombineGlobally(table_steps.sum_arrays)
    )
    _ = merged | "Rank" >> beam.Map(table_steps.rank_shard, degrees, vocabulary, settings, out_dir)
    for position, name in enumerate(("vocabulary", "engagements")):
        _ = engagements | f"Write[{name}]" >> beam.Map(
            lambda arrays, position=position, name=name: np.save(
                os.path.join(out_dir, f"{name}.npy"), arrays[position]
            )
        )


def window_files(path: str, examples: list[types.Artifact]) -> list[str]:
    """The files SessionExampleGen read: for a span pattern, those of the spans it chose (recorded on its
    Examples), so both steps see one window; else every file at `path`."""
    if spans_lib.has_span_spec(path):
        recorded = examples[0].get_string_custom_property(SPAN_SELECTION_KEY) if examples else ""
        if not recorded:
            raise ValueError(
                f"{path}: a span pattern, but SessionExampleGen's Examples record no span selection"
            )
        return list(spans_lib.SpanSelection.from_json(recorded).files)
    return input_files.list_input_files(path)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Engagement log (`input_path`) -> `candidates` (a candidate table over every engaged item)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict, exec_properties: dict[str, Any]):
        self._log_startup(input_dict, output_dict, exec_properties)
        path = exec_properties[INPUT_PATH_KEY]
        source, sessions = session_settings.decode_config(path, exec_properties[INPUT_CONFIG_KEY])
        settings = decode_settings(
            cooccurrence_lib.CooccurrenceSettings, exec_properties.get(CONFIG_KEY), CONFIG_KEY
        )
        candidates = output_dict[CANDIDATES_KEY][0]
        files = window_files(path, input_dict.get(EXAMPLES_KEY) or [])
        input_files.check_input_files(files, source)
        with worker_scratch_dir(candidates.uri) as scratch:
            with self._make_beam_pipeline() as p:
                build_pipeline(p, files, source, sessions, settings, scratch)
            meta = {
                "source": lib.SOURCE_NAME,
                "window": sessions.window,
                "session_gap_seconds": None if source.sessions else sessions.session_gap_seconds,
                **dataclasses.asdict(settings),
            }
            table = assemble_table(scratch, settings, meta, popularity_file="engagements.npy")
        if not table.items:
            raise ValueError(f"no events read from {path!r} (--events): no item to answer cold items from")
        candidate_table.save_table(table, candidates.uri)
        without = int((table.neighbours[:, 0] < 0).sum()) if table.top_n else len(table.items)
        candidates.set_int_custom_property("num_items", len(table.items))
        candidates.set_int_custom_property("top_n", table.top_n)
        candidates.set_int_custom_property("items_without_cooccurrence", without)
        logging.info(
            "Cold-start candidates for the %d items engaged in %s (%d with no co-occurring item) in %s",
            len(table.items),
            path,
            without,
            candidates.uri,
        )
