"""The candidate-table format: round trip, answers, and refusing corrupt files."""

import numpy as np
import pytest

from formats import candidate_table


def _table():
    lists = {"a": [("b", 3.0), ("c", 1.0)], "b": [("a", 3.0)]}
    return candidate_table.from_lists(lists, {"a": 4, "b": 3, "c": 1}, top_n=3, meta={"source": "test"})


def test_round_trip_and_answers(tmp_path):
    table = _table()
    loaded = candidate_table.load_table(candidate_table.save_table(table, str(tmp_path / "t")))
    assert loaded.items == ["a", "b", "c"]
    assert loaded.related(["a", "c", "zz"], 5) == {"a": [("b", 3.0), ("c", 1.0)], "c": [], "zz": None}
    assert loaded.ranked_ids(["a", "zz"], 1) == [["b"], []]
    assert loaded.meta["source"] == "test" and loaded.meta["num_items"] == 3
    assert loaded.popularity.tolist() == [4, 3, 1]


def test_missing_or_corrupt_files_are_named(tmp_path):
    directory = candidate_table.save_table(_table(), str(tmp_path / "t"))
    np.save(tmp_path / "t" / "neighbours.npy", np.array([[7, -1, -1]] * 3, dtype=np.int32))
    with pytest.raises(ValueError, match="neighbour indices"):
        candidate_table.load_table(directory)
    (tmp_path / "t" / "scores.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"scores\.npy"):
        candidate_table.load_table(directory)


def test_pickled_arrays_are_refused(tmp_path):
    directory = candidate_table.save_table(_table(), str(tmp_path / "t"))
    np.save(tmp_path / "t" / "scores.npy", np.array([{"x": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        candidate_table.load_table(directory)


def test_ids_that_break_the_line_format_are_refused(tmp_path):
    table = candidate_table.from_lists({"a\nb": []}, {"a\nb": 1}, top_n=1)
    with pytest.raises(ValueError, match="one per line"):
        candidate_table.save_table(table, str(tmp_path / "t"))


def test_from_arrays_writes_the_same_files_as_from_lists(tmp_path):
    lists = {"a": [("b", 3.0), ("c", 1.0)], "b": [("a", 3.0)]}
    by_lists = candidate_table.from_lists(lists, {"a": 4, "b": 3, "c": 1}, top_n=3, meta={"source": "test"})
    neighbours = np.array([[1, 2, -1], [0, -1, -1], [-1, -1, -1]])
    scores = np.array([[3.0, 1.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    by_arrays = candidate_table.from_arrays(
        ["a", "b", "c"], neighbours, scores, np.array([4, 3, 1]), {"source": "test"}
    )
    first = candidate_table.save_table(by_lists, str(tmp_path / "lists"))
    second = candidate_table.save_table(by_arrays, str(tmp_path / "arrays"))
    for name in ("items.txt", "neighbours.npy", "scores.npy", "popularity.npy", "table.json"):
        assert (tmp_path / "lists" / name).read_bytes() == (tmp_path / "arrays" / name).read_bytes(), name
    assert candidate_table.load_table(second).related(["a"], 2) == candidate_table.load_table(first).related(
        ["a"], 2
    )
