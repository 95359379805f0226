"""SessionExampleGen's executor on hand-made artifacts, and its component spec."""

import collections
import glob
import json
import os
import random
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.session_example_gen import event_rows, input_files, run_counts, session_settings, sessions_lib
from components.session_example_gen.component import Quarantine, SessionExampleGen
from components.session_example_gen.executor import Executor, keep_quarantine, kept_quarantine_file
from components.session_example_gen.session_settings import EventSource, SessionSettings
from trainer_module import features

T0 = 1_000_000_000


def _make_log(n_users=6, per_user=50, seed=0):
    """Rows (user, item, ts): popular items, two rare ones, ties, repeats and session gaps."""
    rng = random.Random(seed)
    rows = []
    for u in range(n_users):
        ts = T0 + u * 7
        for _ in range(per_user):
            ts += rng.choice([0, 0, 30, 120, 600, 4000])
            rows.append((f"u{u}", f"item{rng.randrange(12)}", ts))
    rows += [("u0", "rare_a", T0 + 5), ("u1", "rare_b", T0 + 9)]
    rng.shuffle(rows)
    return rows


def _write_tsv(path, rows, bad_lines=()):
    with open(path, "w") as f:
        f.write("user_id\titem_id\ttimestamp\n")
        for user, item, ts in rows:
            f.write(f"{user}\t{item}\t{ts}\n")
        for line in bad_lines:
            f.write(line + "\n")


def _run(tmp_path, source, settings=None, quarantine_uri=None):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    quarantine = Quarantine()
    quarantine.uri = quarantine_uri or str(tmp_path / "quarantine")
    exec_properties = {
        "input_path": source.path,
        "input_config": session_settings.encode_config(source, settings or SessionSettings()),
        "input_fingerprint": "test",
    }
    Executor().Do({}, {"examples": [examples], "quarantine": [quarantine]}, exec_properties)
    return examples, quarantine


def _read_text(path):
    with open(path) as f:
        return f.read()


def _read_split(examples, split):
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "data_tfrecord-*.gz"))
    assert files, f"no files in split {split}"
    pairs = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        assert set(feature) == {features.ITEM, features.LABEL, features.TIMESTAMP}
        pairs.append(
            sessions_lib.Pair(
                feature[features.ITEM].bytes_list.value[0].decode(),
                feature[features.LABEL].bytes_list.value[0].decode(),
                feature[features.TIMESTAMP].int64_list.value[0],
            )
        )
    return collections.Counter(pairs)


def test_tsv_log_to_examples_matching_the_reference(tmp_path):
    rows = _make_log()
    path = tmp_path / "events.tsv"
    _write_tsv(path, rows, bad_lines=["u9\titem1\tnot-a-time"])  # 1 bad row of 303: under 1%
    examples, quarantine = _run(tmp_path, EventSource(path=str(path)))

    expected = sessions_lib.events_to_pairs([event_rows.Event(*r) for r in rows], SessionSettings())
    train, evaluation = _read_split(examples, "train"), _read_split(examples, "eval")
    assert train == collections.Counter(expected.train)
    assert evaluation == collections.Counter(expected.eval)
    assert _read_split(examples, "test") == collections.Counter(expected.test)
    assert _read_split(examples, "rerank") == collections.Counter(expected.rerank)
    # Every user has enough distinct engagements to give up the default number of rerank transitions.
    assert train and evaluation and len(expected.rerank) == 6 * SessionSettings().rerank_transitions
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval", "test", "rerank"]
    splits = ["Split-eval", "Split-rerank", "Split-test", "Split-train"]
    assert sorted(os.listdir(examples.uri)) == splits  # no temp files

    props = {name: examples.get_int_custom_property(name) for name in run_counts.REPORTED_COUNTERS}
    assert props["rows_read"] == len(rows) + 1
    assert props["events_read"] == len(rows)
    assert props["bad_rows"] == props["bad_row_bad_timestamp"] == 1
    assert props["dropped_rare_item_events"] == 2
    assert props["pairs_train"] == len(expected.train)
    assert props["pairs_eval"] == props["pairs_test"] == len(expected.eval) > 0
    assert props["pairs_rerank"] == len(expected.rerank)
    assert props["sessions"] == expected.counts["sessions"]
    assert props["dropped_short_sessions"] == expected.counts["dropped_short_sessions"] > 0

    lines = _read_text(os.path.join(quarantine.uri, "quarantine.jsonl")).splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record["file"], record["line"], record["reason"]) == (str(path), len(rows) + 2, "bad_timestamp")
    assert record["row"] == {"user_id": "u9", "item_id": "item1", "timestamp": "not-a-time"}
    assert quarantine.get_int_custom_property("bad_rows") == 1
    assert quarantine.get_int_custom_property("rows_read") == len(rows) + 1


def test_too_many_bad_rows_fail_with_path_counts_and_a_quarantine_that_outlives_the_failure(tmp_path):
    path = tmp_path / "dirty.tsv"
    bad_lines = ["\titem1\t5", "u1\titem1\tsoon", "u1\t\t7"]
    _write_tsv(path, _make_log(n_users=2, per_user=20), bad_lines=bad_lines)
    output_uri = tmp_path / "SessionExampleGen" / "quarantine" / "2"  # TFX's layout
    with pytest.raises(ValueError) as error:
        settings = SessionSettings(max_bad_share=0.05)
        _run(tmp_path, EventSource(path=str(path)), settings, quarantine_uri=str(output_uri))
    message = str(error.value)
    assert str(path) in message
    assert "3 of 45 rows" in message
    assert "bad_timestamp=1" in message and "empty_id=2" in message
    shutil.rmtree(output_uri)  # what TFX does to a failed execution's outputs
    kept = message.rsplit("the bad rows are listed in ", 1)[1]
    assert kept == str(tmp_path / "SessionExampleGen" / "failed" / "2" / "quarantine.jsonl")
    rows = [json.loads(line) for line in _read_text(kept).splitlines()]
    assert sorted(r["reason"] for r in rows) == ["bad_timestamp", "empty_id", "empty_id"]


def test_keep_quarantine_gathers_every_shard(tmp_path):
    out = tmp_path / "quarantine"
    out.mkdir()
    (out / "quarantine-00000-of-00002.jsonl").write_text('{"line": 1}\n{"line": 2}\n')
    (out / "quarantine-00001-of-00002.jsonl").write_text('{"line": 3}')  # no final newline
    (out / "other.txt").write_text("not a quarantine shard\n")
    kept = keep_quarantine(str(out / "quarantine.jsonl"), str(tmp_path / "kept" / "quarantine.jsonl"))
    assert [json.loads(line)["line"] for line in _read_text(kept).splitlines()] == [1, 2, 3]
    assert (
        kept_quarantine_file("/r/pipeline/Node/quarantine/7") == "/r/pipeline/Node/failed/7/quarantine.jsonl"
    )


def test_missing_input_fails_with_the_path(tmp_path):
    missing = str(tmp_path / "no" / "such" / "events-*.csv")
    with pytest.raises(FileNotFoundError, match="no/such/events"):
        _run(tmp_path, EventSource(path=missing))


def test_presessionized_input(tmp_path):
    path = tmp_path / "sessions.txt"
    lines = ["a b c", "b c", "c a a b", "d", "", "b"] * 3 + ["a c", "b a"]
    path.write_text("\n".join(lines) + "\n")
    settings = SessionSettings(min_count=4, window=3)
    examples, quarantine = _run(tmp_path, EventSource(path=str(path), sessions=True), settings)

    # Each line is a history (timestamp = line number): "a b c" holds out (a -> b) for eval and (b -> c) for
    # test and trains on nothing; "c a a b" holds out (c -> a) and (a -> b), the repeated "a" counting once;
    # two-item lines train. "d" (3 events) is rare.
    first_lines = (0, 6, 12)
    evaluation = {sessions_lib.Pair("a", "b", 1 + n): 1 for n in first_lines} | {
        sessions_lib.Pair("c", "a", 3 + n): 1 for n in first_lines
    }
    test = {sessions_lib.Pair("b", "c", 1 + n): 1 for n in first_lines} | {
        sessions_lib.Pair("a", "b", 3 + n): 1 for n in first_lines
    }
    train = {sessions_lib.Pair("b", "c", 2 + n): 1 for n in first_lines} | {
        sessions_lib.Pair("a", "c", 19): 1,
        sessions_lib.Pair("b", "a", 20): 1,
    }
    assert _read_split(examples, "eval") == collections.Counter(evaluation)
    assert _read_split(examples, "test") == collections.Counter(test)
    assert _read_split(examples, "train") == collections.Counter(train)
    # No line has the 5 distinct items a rerank transition needs: the split is empty (no files, which
    # StatisticsGen could not read), so the artifact does not list it; training is as without it.
    assert examples.get_int_custom_property("pairs_rerank") == 0
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval", "test"]
    assert not glob.glob(os.path.join(examples.uri, "Split-rerank", "*.gz"))
    assert examples.get_int_custom_property("dropped_rare_item_events") == 3
    assert examples.get_int_custom_property("dropped_short_sessions") == 9  # held-out remainders and "b"s
    assert _read_text(os.path.join(quarantine.uri, "quarantine.jsonl")) == ""


def test_parquet_directory_input_with_iso_timestamps(tmp_path):
    rows = _make_log(n_users=4, per_user=40, seed=1)
    data = tmp_path / "data"
    data.mkdir()
    for shard in range(2):
        part = rows[shard::2]
        table = pa.table(
            {
                "uid": [int(u[1:]) for u, _, _ in part],
                "item": [i for _, i, _ in part],
                "when": [f"{ts - T0 + 1_700_000_000}" if ts % 2 else _iso(ts) for _, _, ts in part],
            }
        )
        pq.write_table(table, data / f"part-{shard}.parquet")
    (data / "_SUCCESS").write_text("")
    source = EventSource(path=str(data), user_col="uid", item_col="item", time_col="when")
    examples, _ = _run(tmp_path, source)

    shifted = [event_rows.Event(u[1:], i, ts - T0 + 1_700_000_000) for u, i, ts in rows]
    expected = sessions_lib.events_to_pairs(shifted, SessionSettings())
    assert _read_split(examples, "train") == collections.Counter(expected.train)
    assert _read_split(examples, "eval") == collections.Counter(expected.eval)
    assert _read_split(examples, "rerank") == collections.Counter(expected.rerank)
    assert examples.get_int_custom_property("bad_rows") == 0


def _iso(ts):
    import datetime

    shifted = ts - T0 + 1_700_000_000
    return datetime.datetime.fromtimestamp(shifted, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def test_component_spec_carries_json_config_and_fingerprint(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\nu,i,1\n")
    settings = SessionSettings(window=3)
    component = SessionExampleGen(EventSource(path=str(path)), settings)
    props = component.exec_properties
    assert props["input_path"] == str(path)
    assert session_settings.decode_config(str(path), props["input_config"]) == (
        EventSource(path=str(path)),
        settings,
    )
    assert props["input_fingerprint"] == input_files.fingerprint_inputs(str(path))
    assert set(component.outputs) == {"examples", "quarantine"}
    assert component.outputs["quarantine"].type_name == "pin2vec.Quarantine"
    explicit = SessionExampleGen(EventSource(path="gs://bucket/logs/*.csv"), input_fingerprint="v1")
    assert explicit.exec_properties["input_fingerprint"] == "v1"
