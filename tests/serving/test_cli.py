"""`pin2vec serve` as a process (ready line, real requests, clean SIGTERM, JSON access log) and
`pin2vec export-related` (Beam) against the searcher's own answers."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import requests
import tensorflow as tf

from formats import candidate_table, index_files, serving_layout
from formats.index_searcher import RelatedItemsSearcher
from pipeline import cli
from serving.candidate_model import TableSearcher
from tests.serving.conftest import ITEM_IDS, NUM_ITEMS, publish

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_serve_command_answers_and_stops_cleanly(artifacts, tmp_path):
    base = str(tmp_path / "serving")
    publish(artifacts.index_a, base, "pin2vec_similar", 3)
    publish(artifacts.index_b, base, "pin2vec", 4)  # the next-engagement index's model, served beside it
    access_log = tmp_path / "access.jsonl"
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--model-base", base, "--rest-port", "0"]
    command += ["--grpc-port", "0", "--access-log", str(access_log)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["event"] == "ready" and ready["host"] == "127.0.0.1"  # loopback by default
        expected = {
            "embedding": [],
            "pin2vec": [4],
            "pin2vec_similar": [3],
            "cooccurrence": [],
            "board": [],
            "blend": [],
            "coldstart": [],
            "related": [4],  # no evaluation pushed: `related` answers from pin2vec, as `pin2vec related` does
        }
        assert ready["models"] == expected and ready["related_answers_from"] == "pin2vec"
        url = f"http://127.0.0.1:{ready['rest_port']}/v1/models/related:predict"
        response = requests.post(url, json={"instances": [ITEM_IDS[10]]}, timeout=10)
        assert response.status_code == 200 and len(response.json()["predictions"][0]["related_ids"]) == 10
        assert requests.post(url, json={"instances": 3}, timeout=10).status_code == 400
        url = f"http://127.0.0.1:{ready['rest_port']}/v1/models/pin2vec:predict"
        response = requests.post(url, json={"instances": [ITEM_IDS[10]]}, timeout=10)
        assert response.status_code == 200 and len(response.json()["predictions"][0]["related_ids"]) == 10
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    lines = [json.loads(line) for line in access_log.read_text().splitlines()]
    assert [(line["protocol"], line["model"], line["status"]) for line in lines] == [
        ("rest", "related", 200),
        ("rest", "related", 400),
        ("rest", "pin2vec", 200),
    ]
    assert all(line["latency_ms"] >= 0 for line in lines) and lines[0]["version"] == 4
    assert "'instances' must be a non-empty list" in lines[1]["error"]


def test_export_related_writes_parquet_and_tfrecord_like_the_searcher(artifacts, tmp_path, capsys):
    serving = tmp_path / "serving"
    publish(artifacts.index_a, str(serving), "pin2vec_similar", 1)
    publish(artifacts.index_b, str(serving), "pin2vec_similar", 2)
    out = tmp_path / "table"
    argv = ["export-related", "--serving-dir", str(serving), "--k", "7", "--out", str(out)]
    assert cli.main([*argv, "--version", "1", "--batch-size", "64", "--source", "pin2vec_similar"]) == 0
    assert "Related items of pin2vec_similar written" in capsys.readouterr().out

    table = pq.read_table(glob.glob(str(out / "related*.parquet"))).to_pylist()
    assert len(table) == NUM_ITEMS
    searcher = RelatedItemsSearcher(os.path.join(serving, "pin2vec_similar", "1"), max_k=7)
    expected = searcher.related(ITEM_IDS, 7)
    by_id = {index_files.decode_item_id(row["item_id"]): row for row in table}
    assert set(by_id) == set(ITEM_IDS)  # non-UTF-8 ids survive as bytes
    for item_id in (ITEM_IDS[0], ITEM_IDS[2], ITEM_IDS[150]):
        row = by_id[item_id]
        assert [index_files.decode_item_id(r) for r in row["related_ids"]] == [
            r for r, _ in expected[item_id]
        ]
        assert row["distances"] == [1 - s for s in row["scores"]] or all(
            abs(d - (1 - s)) < 1e-6 for d, s in zip(row["distances"], row["scores"], strict=True)
        )

    spec = {
        "item_id": tf.io.FixedLenFeature([], tf.string),
        "related_ids": tf.io.VarLenFeature(tf.string),
        "scores": tf.io.VarLenFeature(tf.float32),
    }
    records = tf.data.TFRecordDataset(glob.glob(str(out / "related*.tfrecord")))
    examples = [tf.io.parse_single_example(record, spec) for record in records]
    assert len(examples) == NUM_ITEMS
    first = next(e for e in examples if e["item_id"].numpy() == ITEM_IDS[150].encode())
    assert [r.decode() for r in first["related_ids"].values.numpy()] == [
        r for r, _ in expected[ITEM_IDS[150]]
    ]


def test_export_related_defaults_to_the_served_source_here_the_pin2vec_index(artifacts, tmp_path, capsys):
    serving = tmp_path / "serving"
    publish(artifacts.index_a, str(serving), "pin2vec_similar", 1)
    publish(artifacts.index_b, str(serving), "pin2vec", 1)
    out = tmp_path / "table"
    assert cli.main(["export-related", "--serving-dir", str(serving), "--k", "5", "--out", str(out)]) == 0
    capsys.readouterr()
    table = pq.read_table(glob.glob(str(out / "related*.parquet"))).to_pylist()
    expected = RelatedItemsSearcher(os.path.join(serving, "pin2vec", "1"), max_k=5).related(ITEM_IDS, 5)
    row = next(r for r in table if index_files.decode_item_id(r["item_id"]) == ITEM_IDS[3])
    assert [index_files.decode_item_id(r) for r in row["related_ids"]] == [
        r for r, _ in expected[ITEM_IDS[3]]
    ]


def test_export_related_errors_name_what_is_missing(tmp_path, capsys):
    assert cli.main(["export-related", "--serving-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no complete pushed pin2vec version under" in capsys.readouterr().err


def test_export_related_of_a_table_gives_its_answers_with_the_servers_distances(artifacts, tmp_path, capsys):
    """A co-occurrence table pushed with the cosine index: the export holds the table's answers and the
    cosine distances the server gives (2.0 where an item has no embedding); a k the table lacks is refused."""
    lists = {ITEM_IDS[3]: [(ITEM_IDS[4], 5.0), (ITEM_IDS[9], 2.0), ("no-embedding", 1.0)]}
    lists |= {ITEM_IDS[4]: [(ITEM_IDS[3], 5.0)], "no-embedding": [(ITEM_IDS[3], 1.0)]}
    table_dir = tmp_path / "table"
    counts = {item: 1 for item in [*lists, ITEM_IDS[9]]}
    candidate_table.save_table(candidate_table.from_lists(lists, counts, top_n=5), str(table_dir))
    serving = tmp_path / "serving"
    sources = {"cooccurrence": str(table_dir), "pin2vec_similar": artifacts.index_a}
    version = serving_layout.publish_version(str(serving), sources, {"run": "t"}).version
    out = tmp_path / "export"
    argv = ["export-related", "--serving-dir", str(serving), "--source", "cooccurrence", "--out", str(out)]
    assert cli.main([*argv, "--k", "3", "--format", "parquet"]) == 0
    assert "Related items of cooccurrence written" in capsys.readouterr().out
    rows = pq.read_table(glob.glob(str(out / "related*.parquet"))).to_pylist()
    by_id = {index_files.decode_item_id(row["item_id"]): row for row in rows}
    row = by_id[ITEM_IDS[3]]
    assert [index_files.decode_item_id(r) for r in row["related_ids"]] == [
        ITEM_IDS[4],
        ITEM_IDS[9],
        "no-embedding",
    ]
    assert row["scores"] == [5.0, 2.0, 1.0]
    searcher = TableSearcher(str(table_dir), os.path.join(serving, "pin2vec_similar", str(version)), max_k=3)
    expected = searcher.distances(ITEM_IDS[3], [ITEM_IDS[4], ITEM_IDS[9], "no-embedding"])
    assert row["distances"] == pytest.approx(list(expected)) and row["distances"][2] == 2.0
    assert 0.0 <= row["distances"][0] < 2.0
    assert cli.main([*argv, "--k", "6", "--out", str(tmp_path / "too-many")]) == 1
    assert "keeps 5 candidates per item" in capsys.readouterr().err


def test_serve_refuses_a_model_base_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "no-such-serving"
    assert cli.main(["serve", "--model-base", str(missing), "--rest-port", "0", "--grpc-port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"--model-base {missing} is not a directory" in err and "pin2vec run" in err
