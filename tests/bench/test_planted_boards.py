"""bench.planted_boards: precision against the planted truth by hand, and its paired table."""

import numpy as np
import pytest

from bench import planted_boards


def test_planted_precision_counts_the_top_k_in_the_truth_and_no_answer_as_zero():
    answers = [["a", "b", "x"], None, ["c"]]
    truths = [{"a", "b", "c"}, {"a"}, {"d"}]
    np.testing.assert_allclose(planted_precision_of(answers, truths, k=2), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(planted_precision_of(answers, truths, k=3), [2 / 3, 0.0, 0.0])


def planted_precision_of(answers, truths, k):
    return planted_boards.planted_precision(answers, truths, k=k)


def test_precision_table_pairs_every_source_with_pin2vec_per_bucket():
    buckets = np.array([0, 0, 1, 2])
    precision = {"pin2vec": np.array([0.5, 0.7, 0.4, 0.1]), "board": np.array([0.3, 0.5, 0.4, 0.3])}
    rows = planted_boards.precision_table(precision, buckets)
    assert rows[0].startswith("| pin2vec | 0.425 | 0.600 / 0.400 / 0.100 | reference")
    board = rows[1].split(" | ")
    assert board[1] == "0.375" and board[2] == "0.400 / 0.400 / 0.300"
    overall, head, torso, tail = board[3].rstrip(" |").split(" / ")
    assert overall.startswith("+0.050") and head.startswith("**+0.200") and tail.startswith("-0.200 [-inf")
    assert torso.startswith("+0.000")


def test_measure_says_what_to_run_when_nothing_was_pushed(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        planted_boards.measure(str(tmp_path), str(tmp_path))
