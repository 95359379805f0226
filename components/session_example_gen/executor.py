"""SessionExampleGen executor: wires the package's pure modules into a Beam pipeline, records what it counted.

Thin on purpose: every decision about input files (`input_files`), rows (`event_rows`), sessions and pairs
(`sessions_lib`) and the run's counts (`run_counts`) is made in those modules; this file only reads the exec
properties, fans the work out over Beam, writes the splits and the quarantine, and reports.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from absl import logging
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.session_example_gen import (
    event_rows,
    input_files,
    run_counts,
    sessions_batch,
    sessions_lib,
    spans_lib,
    tfrecord_files,
)
from components.session_example_gen.pair_example import encode_pairs
from components.session_example_gen.session_settings import EventSource, SessionSettings, decode_config

# Exec property and output keys (the component spec uses the same names).
INPUT_PATH_KEY = "input_path"
INPUT_CONFIG_KEY = "input_config"
INPUT_FINGERPRINT_KEY = "input_fingerprint"
RANGE_CONFIG_KEY = "range_config"  # as in driver.py, which the executor does not import
SPAN_SELECTION_KEY = "span_selection"
EXAMPLES_KEY = "examples"
QUARANTINE_KEY = "quarantine"

# eval and test: each user's last two transitions (validation, the reported figure); rerank: the transitions
# before those (the reranker's training queries). Training sees none of their targets.
SPLITS = ("train", "eval", "test", "rerank")
HELD_OUT = SPLITS[1:]
QUARANTINE_FILE = "quarantine.jsonl"
EXAMPLES_FILE_PREFIX = "data_tfrecord"  # TFX's layout: <uri>/Split-<name>/data_tfrecord-*.gz
TEMP_DIR = "_beam_temp"  # beside the splits, removed when the run is done
FAILED_DIR = "failed"  # <pipeline root>/<node>/failed/<execution id>/: a failed execution's quarantine
_BAD = "bad"  # _ParseBatches' tagged output of quarantine lines
# Users split together (sessions_batch): enough to amortise numpy's per-call cost, few enough that a batch's
# arrays stay small (~100 events a user at 20M events: ~50k events, ~10 MB of records a batch at most).
USERS_PER_BATCH = (16, 512)


class _Counting(beam.DoFn):
    """A DoFn that counts by name into the component's Beam Metrics namespace."""

    def setup(self) -> None:
        self._counters: dict[str, Any] = {}

    def _inc(self, name: str, n: int = 1) -> None:
        if name not in self._counters:
            self._counters[name] = beam.metrics.Metrics.counter(run_counts.METRICS_NAMESPACE, name)
        if n:
            self._counters[name].inc(n)


class _ParseBatches(_Counting):
    """RowBatch -> one list of event tuples; malformed rows go to the `bad` output as quarantine lines."""

    def __init__(self, source: EventSource):
        self._source = source

    def process(self, batch: input_files.RowBatch) -> Iterator[Any]:
        parsed = event_rows.parse_batch(batch, self._source)
        for name, count in parsed.counts.items():
            self._inc(name, count)
        for line in parsed.bad:
            yield beam.pvalue.TaggedOutput(_BAD, line)
        if parsed.events:
            yield parsed.events


class _FrequentItems(beam.CombineFn):
    """Event batches -> the set of items engaged at least `min_count` times over the whole log."""

    def __init__(self, min_count: int):
        self._min_count = min_count

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, counts: Counter, events: list[event_rows.EventTuple]) -> Counter:
        counts.update(e[1] for e in events)
        return counts

    def merge_accumulators(self, accumulators: Iterable[Counter]) -> Counter:
        merged = Counter()
        for counts in accumulators:
            merged.update(counts)
        return merged

    def extract_output(self, counts: Counter) -> frozenset[str]:
        return frozenset(item for item, n in counts.items() if sessions_lib.is_frequent(n, self._min_count))


def _by_user(events: list[event_rows.EventTuple]) -> Iterator[tuple[str, list[tuple[str, int, int]]]]:
    """One element per user of the batch (not per event): fewer, larger elements to group."""
    grouped: dict[str, list[tuple[str, int, int]]] = {}
    for user, item, ts, seq in events:
        grouped.setdefault(user, []).append((item, ts, seq))
    yield from grouped.items()


class _BatchExamples(_Counting):
    """A batch of users' events -> framed train records (main) and held-out eval/test/rerank records
    (tagged), one bytes element per split; a user's records are consecutive in each."""

    def __init__(self, settings: SessionSettings, gap_seconds: int | None):
        self._settings = settings
        self._gap_seconds = gap_seconds

    def process(self, users: list[sessions_batch.UserChunks], frequent: frozenset[str] | None = None):
        result = sessions_batch.batch_examples(users, self._settings, self._gap_seconds, frequent)
        for name, count in result.counts.items():
            self._inc(name, count)
        for split in SPLITS:
            pairs = getattr(result, split)
            if len(pairs.items):
                framed = tfrecord_files.frame_records(*encode_pairs(result.items, *pairs))
                yield framed if split == "train" else beam.pvalue.TaggedOutput(split, framed)


def read_events(p: beam.Pipeline, files: list[str], source: EventSource, quarantine_file: str):
    """Files -> a PCollection of event lists (one per batch of rows); malformed rows, with their reason, go
    to `quarantine_file`. Shared with BoardCooccurrence, which reads collections as events of boards."""
    parsed = (
        p
        | "ListFiles" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadRows" >> beam.FlatMap(input_files.read_row_batches, source)
        | "ParseRows" >> beam.ParDo(_ParseBatches(source)).with_outputs(_BAD, main="events")
    )
    prefix, suffix = os.path.splitext(quarantine_file)
    _ = parsed[_BAD] | "WriteQuarantine" >> beam.io.WriteToText(
        prefix, file_name_suffix=suffix, shard_name_template=""
    )
    return parsed.events


def kept_quarantine_file(artifact_uri: str) -> str:
    """Where a failing execution keeps its quarantine: TFX deletes a failed execution's output directories
    (<pipeline root>/<node>/<output key>/<execution id>), so the file goes to the node's
    failed/<execution id>/ beside them, which TFX leaves alone."""
    uri = artifact_uri.rstrip("/")
    node_dir = os.path.dirname(os.path.dirname(uri))
    return os.path.join(node_dir, FAILED_DIR, os.path.basename(uri), QUARANTINE_FILE)


def keep_quarantine(quarantine_file: str, kept_file: str) -> str:
    """Copies the rows of every file Beam wrote for `quarantine_file` (its prefix, any shard name, its suffix)
    into `kept_file`, which it returns: the file a failure message names must outlive the failure."""
    prefix, suffix = os.path.splitext(quarantine_file)
    shards = sorted(fileio.glob(f"{prefix}*{suffix}"))
    fileio.makedirs(os.path.dirname(kept_file))
    with fileio.open(kept_file, "wb") as out:
        for shard in shards:
            last = b"\n"
            with fileio.open(shard, "rb") as f:
                while chunk := f.read(1 << 20):  # a large log's quarantine need not fit in memory
                    out.write(chunk)
                    last = chunk[-1:]
            if last != b"\n":
                out.write(b"\n")
    return kept_file


def build_pipeline(
    p: beam.Pipeline,
    files: list[str],
    source: EventSource,
    settings: SessionSettings,
    split_uris: dict[str, str],
    quarantine_file: str,
    temp_dir: str,
) -> None:
    """Adds read -> parse -> frequent items -> per-user hold-out, sessions and pairs -> write to `p`.

    Rows, events and a user's training pairs move between steps in batches: per-element overhead, not the
    algorithm, is what limits a Beam pipeline over tens of millions of events on a laptop.
    """
    events = read_events(p, files, source, quarantine_file)
    frequent = None
    if settings.min_count > 1:
        frequent = beam.pvalue.AsSingleton(
            events | "FrequentItems" >> beam.CombineGlobally(_FrequentItems(settings.min_count))
        )
    gap = None if source.sessions else settings.session_gap_seconds
    examples = (
        events
        | "KeyByUser" >> beam.FlatMap(_by_user)
        | "GroupByUser" >> beam.GroupByKey()
        | "BatchUsers"
        >> beam.BatchElements(min_batch_size=USERS_PER_BATCH[0], max_batch_size=USERS_PER_BATCH[1])
        | "BatchExamples"
        >> beam.ParDo(_BatchExamples(settings, gap), frequent).with_outputs(*HELD_OUT, main="train")
    )
    # One element per batch of users and split: a user's pairs stay together in the files (the trainer keeps
    # a batch's pairs of one item together); GroupByUser already spreads users across the output.
    for split in SPLITS:
        _ = examples[split] | f"Write[{split}]" >> tfrecord_files.write_framed_records(
            split_uris[split], EXAMPLES_FILE_PREFIX, os.path.join(temp_dir, split)
        )


def read_metrics(result: PipelineResult) -> dict[str, int]:
    """Counters summed over steps, from a finished run."""
    query = result.metrics().query(MetricsFilter().with_namespace(run_counts.METRICS_NAMESPACE))
    counts: dict[str, int] = dict.fromkeys(run_counts.REPORTED_COUNTERS, 0)
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + int(value or 0)
    return counts


def input_spans(exec_properties: dict[str, Any]) -> spans_lib.SpanSelection | None:
    """The spans to read: those the driver chose, else (no driver ran: Kubeflow) resolved here; None for an
    input without span placeholders."""
    input_path = exec_properties[INPUT_PATH_KEY]
    if not spans_lib.has_span_spec(input_path):
        return None
    if chosen := exec_properties.get(SPAN_SELECTION_KEY):
        return spans_lib.SpanSelection.from_json(chosen)
    range_config = spans_lib.range_config_from_json(exec_properties.get(RANGE_CONFIG_KEY) or "")
    return spans_lib.resolve_pattern(input_path, range_config)


def record_spans(examples: types.Artifact, selection: spans_lib.SpanSelection) -> None:
    """TFX's `span` and `version` properties (the newest span read), and every span read, as TFX's
    ExampleGen records one: `spans` (numbers), `span_labels` (dates for a date pattern), `missing_spans`
    (inside the window, without files), `input_pattern`."""
    examples.span = selection.span
    if selection.version is not None:
        examples.version = selection.version
    examples.set_string_custom_property("spans", ",".join(map(str, selection.spans)))
    examples.set_string_custom_property("span_labels", ",".join(selection.labels))
    examples.set_string_custom_property("missing_spans", ",".join(selection.missing_labels))
    examples.set_string_custom_property("input_pattern", selection.pattern)
    examples.set_int_custom_property("input_files", len(selection.files))
    examples.set_string_custom_property(SPAN_SELECTION_KEY, selection.to_json())  # what later steps read


class Executor(base_beam_executor.BaseBeamExecutor):
    """Engagement log (`input_path`) -> Examples (train pairs, held-out eval/test/rerank) + Quarantine."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        input_path = exec_properties[INPUT_PATH_KEY]
        source, settings = decode_config(input_path, exec_properties[INPUT_CONFIG_KEY])
        if source.time_col is None and not source.sessions:
            raise ValueError(f"{input_path}: engagement events need a time column (--time-col) to be ordered")
        selection = input_spans(exec_properties)
        files = list(selection.files) if selection else input_files.list_input_files(input_path)
        input_files.check_input_files(files, source)

        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        quarantine = artifact_utils.get_single_instance(output_dict[QUARANTINE_KEY])
        quarantine_file = os.path.join(quarantine.uri, QUARANTINE_FILE)
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        split_uris = {split: artifact_utils.get_split_uri([examples], split) for split in SPLITS}

        temp_dir = os.path.join(examples.uri, TEMP_DIR)
        with self._make_beam_pipeline() as p:
            build_pipeline(p, files, source, settings, split_uris, quarantine_file, temp_dir)
        fileio.rmtree(temp_dir)
        counts = read_metrics(p.result)

        if counts["pairs_rerank"] == 0:
            # An empty split has no files, which StatisticsGen cannot read; without it, RelatedEvaluator keeps
            # the RRF blend, tuned on validation.
            examples.split_names = artifact_utils.encode_split_names([s for s in SPLITS if s != "rerank"])
        examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        for name in run_counts.REPORTED_COUNTERS:
            examples.set_int_custom_property(name, counts[name])
        fingerprint = exec_properties.get(INPUT_FINGERPRINT_KEY) or ""
        if selection is not None:
            record_spans(examples, selection)
            fingerprint = fingerprint or input_files.fingerprint_files(selection.files)
        examples.set_string_custom_property(INPUT_FINGERPRINT_KEY, fingerprint)
        quarantine.set_int_custom_property("bad_rows", counts["bad_rows"])
        quarantine.set_int_custom_property("rows_read", counts["rows_read"])

        logging.info(
            "SessionExampleGen %s (%d file(s)): %s; quarantine %s",
            input_path,
            len(files),
            run_counts.summary(counts),
            quarantine_file,
        )
        if counts["pairs_eval"] == 0:
            logging.warning(
                "SessionExampleGen %s: no user has 3 or more engagements, so nothing is held out for "
                "evaluation (eval and test splits are empty)",
                input_path,
            )
        elif counts["pairs_rerank"] == 0 and settings.rerank_transitions > 0:
            logging.warning(
                "SessionExampleGen %s: no held-out user has %d or more engagements, so the rerank split is "
                "empty (RelatedEvaluator then keeps the RRF blend)",
                input_path,
                settings.rerank_min_engagements,
            )
        if run_counts.too_many_bad_rows(
            counts, settings.max_bad_share
        ):  # the run fails, naming the kept copy
            quarantine_file = keep_quarantine(quarantine_file, kept_quarantine_file(quarantine.uri))
        run_counts.check_counts(input_path, counts, settings, quarantine_file)
