"""Board co-occurrence: weights by hand, the Beam executor on tiny collections with known counts, bad rows."""

import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from tfx.types import channel_utils, standard_artifacts  # noqa: F401  (TFX artifacts are registered on import)

from components.board_cooccurrence import board_lib
from components.board_cooccurrence.board_lib import BoardSettings
from components.board_cooccurrence.component import BoardCooccurrence
from components.board_cooccurrence.executor import Executor, source_to_json
from components.cooccurrence.component import RelatedCandidates
from components.cooccurrence.executor import SCRATCH_DIR
from components.session_example_gen.component import Quarantine
from components.session_example_gen.session_settings import EventSource
from formats import candidate_table
from formats.settings_codec import decode_settings, encode_settings

# Board b1: a, b, c (3 items: each pair weighs 1/2); b2: a, b (1 pair, weight 1); b3: d alone (no pair).
SAVES = {
    "b1": [("a", 10), ("b", 11), ("c", 12), ("a", 13)],  # a's second save counts once
    "b2": [("b", 5), ("a", 6)],
    "b3": [("d", 1)],
}


def test_pair_weights_by_hand():
    lists = board_lib.board_lists(SAVES, BoardSettings(popularity_exponent=0.0, board_size_exponent=1.0))
    assert lists["a"] == [("b", pytest.approx(1.5)), ("c", pytest.approx(0.5))]
    assert lists["c"] == [("a", pytest.approx(0.5)), ("b", pytest.approx(0.5))]
    assert "d" not in lists  # saved alone: no co-occurrence


def test_board_size_exponent_zero_counts_every_pair_fully():
    lists = board_lib.board_lists(SAVES, BoardSettings(popularity_exponent=0.0, board_size_exponent=0.0))
    assert lists["a"] == [("b", 2.0), ("c", 1.0)]


def test_long_boards_are_cut_into_runs_in_save_order():
    saves = [(f"i{n}", 100 - n) for n in range(5)]  # saved i4 first, i0 last
    assert board_lib.board_runs(saves, max_board_size=2) == [["i4", "i3"], ["i2", "i1"], ["i0"]]
    lists = board_lib.board_lists({"big": saves}, BoardSettings(max_board_size=2, popularity_exponent=0.0))
    assert lists["i4"] == [("i3", 1.0)] and "i0" not in lists


def test_settings_are_checked_and_round_trip():
    with pytest.raises(ValueError, match="max_board_size"):
        BoardSettings(max_board_size=1)
    with pytest.raises(ValueError, match="board_size_exponent"):
        BoardSettings(board_size_exponent=-1)
    with pytest.raises(ValueError, match=r"board_config: unknown setting BoardSettings\.topn \(known: "):
        decode_settings(BoardSettings, '{"topn": 3}', "board_config")
    settings = BoardSettings(top_n=7)
    assert decode_settings(BoardSettings, encode_settings(settings), "board_config") == settings


def _write_collections(path, extra_rows=()):
    rows = [(board, item, ts) for board, saves in SAVES.items() for item, ts in saves]
    lines = ["board,pin,saved_at"] + [f"{b},{i},{t}" for b, i, t in rows] + list(extra_rows)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _run(tmp_path, path, settings, time_col="saved_at"):
    candidates, quarantine = RelatedCandidates(), Quarantine()
    candidates.uri = str(tmp_path / "candidates")
    quarantine.uri = str(tmp_path / "BoardCooccurrence" / "quarantine" / "3")  # TFX's layout
    source = EventSource(path=path, user_col="board", item_col="pin", time_col=time_col)
    Executor().Do(
        {},
        {"candidates": [candidates], "quarantine": [quarantine]},
        {
            "collections_path": path,
            "source_config": source_to_json(source),
            "board_config": encode_settings(settings),
        },
    )
    return candidates, quarantine


def test_executor_matches_the_reference_and_counts_saves(tmp_path):
    settings = BoardSettings(top_n=2, popularity_exponent=0.25)
    candidates, quarantine = _run(tmp_path, _write_collections(tmp_path / "boards.csv"), settings)
    table = candidate_table.load_table(candidates.uri)
    expected = board_lib.board_lists(SAVES, settings)
    for item in "abc":
        got = table.candidates(item, 2)
        assert [c for c, _ in got] == [c for c, _ in expected[item]]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected[item]])
    assert table.candidates("d", 2) == []
    saves = dict(zip(table.items, table.popularity.tolist(), strict=True))
    assert saves == {"a": 3, "b": 2, "c": 1, "d": 1}  # the popularity of a board table: saves per item
    assert table.meta["source"] == "board"
    assert quarantine.get_int_custom_property("rows_read") == 7
    assert not os.path.exists(os.path.join(candidates.uri, SCRATCH_DIR))  # the workers' files, removed


def test_collections_without_a_time_column_rank_in_file_order(tmp_path):
    path = tmp_path / "boards.tsv"
    path.write_text("board\tpin\nb1\tx\nb1\ty\nb2\tx\nb2\ty\nb2\tz\n")
    settings = BoardSettings(popularity_exponent=0.0, board_size_exponent=1.0)
    candidates, _ = _run(tmp_path, str(path), settings, time_col=None)
    table = candidate_table.load_table(candidates.uri)
    assert table.candidates("x", 5) == [("y", 1.5), ("z", 0.5)]


def test_malformed_rows_are_quarantined_and_too_many_fail_naming_the_file(tmp_path):
    path = _write_collections(tmp_path / "boards.csv", extra_rows=["b9,,20", "b9,q,yesterday"])
    with pytest.raises(ValueError, match=r"2 of 9 collection rows .*boards\.csv.*quarantine\.jsonl") as error:
        _run(tmp_path, path, BoardSettings())
    shutil.rmtree(tmp_path / "BoardCooccurrence" / "quarantine")  # as TFX does to failed outputs
    kept = str(error.value).rsplit("the bad rows are listed in ", 1)[1]
    assert kept == str(tmp_path / "BoardCooccurrence" / "failed" / "3" / "quarantine.jsonl")
    lines = pathlib.Path(kept).read_text().splitlines()
    assert sorted(json.loads(line)["reason"] for line in lines) == ["bad_timestamp", "empty_id"]
    candidates, quarantine = _run(tmp_path / "tolerant", path, BoardSettings(max_bad_share=0.5))
    assert quarantine.get_int_custom_property("bad_rows") == 2
    assert candidate_table.load_table(candidates.uri).candidates("a", 1)[0][0] == "b"


def test_a_missing_column_is_reported_before_any_work(tmp_path):
    path = _write_collections(tmp_path / "boards.csv")
    with pytest.raises(ValueError, match=r"has no column\(s\) \['saved'\]"):
        _run(tmp_path, path, BoardSettings(), time_col="saved")


def test_component_carries_source_and_settings_as_json(tmp_path):
    path = _write_collections(tmp_path / "boards.csv")
    source = EventSource(path=path, user_col="board", item_col="pin", time_col=None)
    component = BoardCooccurrence(source, BoardSettings(top_n=9))
    assert json.loads(component.exec_properties["board_config"])["top_n"] == 9
    assert json.loads(component.exec_properties["source_config"])["user_col"] == "board"
    assert component.exec_properties["input_fingerprint"]
    assert component.outputs["candidates"].type_name == "pin2vec.RelatedCandidates"


def test_run_weights_are_symmetric_and_skip_self_pairs():
    keys, weights = board_lib.run_pair_weights(np.array([0, 2, 3]), 4, exponent=1.0)
    assert sorted(keys.tolist()) == sorted([0 * 4 + 2, 0 * 4 + 3, 2 * 4 + 0, 2 * 4 + 3, 3 * 4 + 0, 3 * 4 + 2])
    assert weights.tolist() == [0.5] * 6
    merged_keys, merged = board_lib.merge_weights([(keys, weights), (keys[:1], weights[:1])])
    assert merged[merged_keys.tolist().index(keys[0])] == pytest.approx(1.0)


def test_without_a_time_column_runs_follow_the_rows_of_the_file_not_the_ids(tmp_path):
    path = tmp_path / "boards.csv"
    path.write_text("board,pin\nb1,z\nb1,a\nb1,m\n")  # saved z, a, m: runs of 2 are (z, a), (m)
    settings = BoardSettings(popularity_exponent=0.0, board_size_exponent=0.0, max_board_size=2)
    candidates, _ = _run(tmp_path, str(path), settings, time_col=None)
    table = candidate_table.load_table(candidates.uri)
    assert table.candidates("z", 5) == [("a", 1.0)] and table.candidates("m", 5) == []
