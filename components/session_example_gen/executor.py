"""SessionExampleGen executor: wires `sessions_lib` into a Beam pipeline and records what it counted.

Thin on purpose: every decision about rows, sessions and pairs is in `sessions_lib`; this file only reads the
exec properties, fans the work out over Beam, writes the splits and the quarantine, and reports.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import tensorflow as tf
from absl import logging
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.session_example_gen import sessions_lib as lib
from trainer_module import features

# Exec property and output keys (the component spec uses the same names).
INPUT_PATH_KEY = "input_path"
INPUT_CONFIG_KEY = "input_config"
INPUT_FINGERPRINT_KEY = "input_fingerprint"
EXAMPLES_KEY = "examples"
QUARANTINE_KEY = "quarantine"

SPLITS = ("train", "eval", "test")
QUARANTINE_FILE = "quarantine.jsonl"
EXAMPLES_FILE_PREFIX = "data_tfrecord"  # TFX's layout: <uri>/Split-<name>/data_tfrecord-*.gz
_BAD = "bad"


class _Counting(beam.DoFn):
    """A DoFn that counts by name into the component's Beam Metrics namespace."""

    def setup(self) -> None:
        self._counters: dict[str, Any] = {}

    def _inc(self, name: str, n: int = 1) -> None:
        if name not in self._counters:
            self._counters[name] = beam.metrics.Metrics.counter(lib.METRICS_NAMESPACE, name)
        if n:
            self._counters[name].inc(n)


class _ParseRows(_Counting):
    """RawRow -> Events; malformed rows go to the `bad` output as quarantine lines."""

    def __init__(self, source: lib.EventSource):
        self._source = source

    def process(self, raw: lib.RawRow) -> Iterator[Any]:
        if self._source.sessions:
            text = raw.row[lib.SESSION_FIELD]
            if text.strip():
                self._inc("rows_read")
                events = lib.parse_session_line(text, raw.file, raw.line)
                self._inc("events_read", len(events))
                yield from events
            return
        self._inc("rows_read")
        parsed = lib.parse_row(raw.row, self._source)
        if isinstance(parsed, lib.Event):
            self._inc("events_read")
            yield parsed
        elif isinstance(parsed, lib.BadRow):
            self._inc("bad_rows")
            self._inc(f"bad_row_{parsed.reason}")
            yield beam.pvalue.TaggedOutput(_BAD, lib.quarantine_record(raw, parsed))
        else:
            self._inc(parsed.reason)


class _DropRareItems(_Counting):
    def __init__(self, min_count: int):
        self._min_count = min_count

    def process(self, item_events: tuple[str, Iterable[lib.Event]]) -> Iterator[lib.Event]:
        _, events = item_events
        count = sum(1 for _ in events)
        if lib.is_frequent(count, self._min_count):
            yield from events
        else:
            self._inc("dropped_rare_item_events", count)


class _HoldOutAndSessionize(_Counting):
    """One user's events -> sessions of the training history (main), held-out eval/test pairs (tagged)."""

    def __init__(self, gap_seconds: int | None, eval_user_share: float):
        self._gap_seconds = gap_seconds
        self._eval_user_share = eval_user_share

    def process(self, user_events: tuple[str, Iterable[lib.Event]]) -> Iterator[Any]:
        history = lib.hold_out_last(user_events[1], self._eval_user_share)
        if history.test is not None:
            self._inc("pairs_eval")
            self._inc("pairs_test")
            yield beam.pvalue.TaggedOutput("eval", history.eval)
            yield beam.pvalue.TaggedOutput("test", history.test)
        result = lib.sessionize(history.train, self._gap_seconds)
        self._inc("sessions", len(result.sessions))
        self._inc("dropped_short_sessions", result.dropped_short)
        self._inc("dropped_repeated_events", result.dropped_repeats)
        yield from result.sessions


class _Pairs(_Counting):
    def __init__(self, window: int):
        self._window = window

    def process(self, session: lib.Session) -> Iterator[lib.Pair]:
        pairs = lib.session_pairs(session, self._window)
        self._inc("pairs_train", len(pairs))
        yield from pairs


def _to_example(pair: lib.Pair) -> bytes:
    feature = {
        features.ITEM: tf.train.Feature(bytes_list=tf.train.BytesList(value=[pair.item.encode("utf-8")])),
        features.LABEL: tf.train.Feature(bytes_list=tf.train.BytesList(value=[pair.label.encode("utf-8")])),
        features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[pair.timestamp])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def build_pipeline(
    p: beam.Pipeline,
    files: list[str],
    source: lib.EventSource,
    settings: lib.SessionSettings,
    split_uris: dict[str, str],
    quarantine_file: str,
) -> None:
    """Adds read -> parse -> rare-item filter -> sessions -> split pairs -> write to `p`."""
    parsed = (
        p
        | "ListFiles" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadRows" >> beam.FlatMap(lib.read_rows, source)
        | "ParseRows" >> beam.ParDo(_ParseRows(source)).with_outputs(_BAD, main="events")
    )
    prefix, suffix = os.path.splitext(quarantine_file)
    _ = parsed[_BAD] | "WriteQuarantine" >> beam.io.WriteToText(
        prefix, file_name_suffix=suffix, shard_name_template=""
    )
    events = parsed.events
    if settings.min_count > 1:
        events = (
            events
            | "KeyByItem" >> beam.WithKeys(lambda e: e.item)
            | "GroupByItem" >> beam.GroupByKey()
            | "DropRareItems" >> beam.ParDo(_DropRareItems(settings.min_count))
        )
    gap = None if source.sessions else settings.session_gap_seconds
    histories = (
        events
        | "KeyByUser" >> beam.WithKeys(lambda e: e.user)
        | "GroupByUser" >> beam.GroupByKey()
        | "HoldOutAndSessionize"
        >> beam.ParDo(_HoldOutAndSessionize(gap, settings.eval_user_share)).with_outputs(
            "eval", "test", main="sessions"
        )
    )
    pairs = {
        "train": histories.sessions | "Pairs" >> beam.ParDo(_Pairs(settings.window)),
        "eval": histories.eval,
        "test": histories.test,
    }
    for split in SPLITS:
        _ = (
            pairs[split]
            | f"ToExample[{split}]" >> beam.Map(_to_example)
            # Pairs of one session would otherwise sit side by side and fill a training batch together.
            | f"Shuffle[{split}]" >> beam.Reshuffle()
            | f"Write[{split}]"
            >> beam.io.WriteToTFRecord(
                os.path.join(split_uris[split], EXAMPLES_FILE_PREFIX), file_name_suffix=".gz"
            )
        )


def read_metrics(result: PipelineResult) -> dict[str, int]:
    """Counters summed over steps, from a finished run."""
    query = result.metrics().query(MetricsFilter().with_namespace(lib.METRICS_NAMESPACE))
    counts: dict[str, int] = dict.fromkeys(lib.REPORTED_COUNTERS, 0)
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + int(value or 0)
    return counts


class Executor(base_beam_executor.BaseBeamExecutor):
    """Engagement log (`input_path`) -> Examples (train pairs, held-out eval/test) + Quarantine."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        input_path = exec_properties[INPUT_PATH_KEY]
        source, settings = lib.decode_config(input_path, exec_properties[INPUT_CONFIG_KEY])
        files = lib.list_input_files(input_path)
        lib.check_input_files(files, source)

        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        quarantine = artifact_utils.get_single_instance(output_dict[QUARANTINE_KEY])
        quarantine_file = os.path.join(quarantine.uri, QUARANTINE_FILE)
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        split_uris = {split: artifact_utils.get_split_uri([examples], split) for split in SPLITS}

        with self._make_beam_pipeline() as p:
            build_pipeline(p, files, source, settings, split_uris, quarantine_file)
        counts = read_metrics(p.result)

        examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        for name in lib.REPORTED_COUNTERS:
            examples.set_int_custom_property(name, counts[name])
        fingerprint = exec_properties.get(INPUT_FINGERPRINT_KEY) or ""
        examples.set_string_custom_property(INPUT_FINGERPRINT_KEY, fingerprint)
        quarantine.set_int_custom_property("bad_rows", counts["bad_rows"])
        quarantine.set_int_custom_property("rows_read", counts["rows_read"])

        logging.info(
            "SessionExampleGen %s (%d file(s)): %s; quarantine %s",
            input_path,
            len(files),
            lib.summary(counts),
            quarantine_file,
        )
        if counts["pairs_eval"] == 0:
            logging.warning(
                "SessionExampleGen %s: no user has 3 or more engagements, so nothing is held out for "
                "evaluation (eval and test splits are empty)",
                input_path,
            )
        lib.check_counts(input_path, counts, settings, quarantine_file)
