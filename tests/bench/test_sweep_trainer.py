"""bench/sweep_trainer: the scorers, frequent-item subsampling, the pairs and the choice on validation."""

from __future__ import annotations

import numpy as np
import pytest

from bench import sweep_trainer as sweep
from components.session_example_gen import sessions_lib


def arrays() -> sweep.ModelArrays:
    hidden = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [10.0, 0.5]])
    weights = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    biases = np.array([0.0, 0.0, -5.0, 4.0])
    return sweep.ModelArrays(hidden, weights, biases)


ITEMS = ["a", "b", "c", "d"]
VOCABULARY = {item: row for row, item in enumerate(ITEMS)}


def ranked(scorer: str, query: str) -> list[str]:
    return sweep.scorer_answer(arrays(), scorer, ITEMS, VOCABULARY)([query], 3)[0]


def test_similar_is_cosine_of_hidden_layers_without_the_query():
    # cosine to a = [1, 0]: b 0.994, d 0.9988, c 0
    assert ranked("similar", "a") == ["d", "b", "c"]


def test_next_scores_the_query_hidden_layer_against_softmax_rows():
    # hidden(a) . rows: a 0, b 1, c 2, d 0 -> c, b, then the tie a/d (a is the query, excluded)
    assert ranked("next", "a") == ["c", "b", "d"]
    # + biases: b 1, c -3, d 4
    assert ranked("next_bias", "a") == ["d", "b", "c"]


def test_next_cosine_ignores_the_softmax_rows_lengths():
    # unit rows: a [0, 1], b [1, 0], c [1, 0], d [0, 1]; query b (hidden [0.9, 0.1]) -> c first, ties by row
    assert ranked("next_cosine", "b") == ["c", "a", "d"]
    assert ranked("next", "b")[0] == "c"


def test_unknown_query_gets_an_empty_list():
    assert sweep.scorer_answer(arrays(), "next", ITEMS, VOCABULARY)(["zz", "a"], 2) == [[], ["c", "b"]]


def test_subsample_off_keeps_everything():
    sessions = [np.array([0, 1, 2]), np.array([], dtype=np.int64), np.array([2])]
    kept = sweep.subsample_sessions(sessions, np.array([5, 1, 1]), 0.0, np.random.default_rng(0))
    assert [s.tolist() for s in kept] == [[0, 1, 2], [], [2]]


def test_subsample_drops_frequent_items_at_words2vecs_rate_and_keeps_rare_ones():
    counts = np.array([9_000, 900, 100])  # f = 0.9, 0.09, 0.01
    rng = np.random.default_rng(1)
    sessions = [rng.choice(3, size=50, p=counts / counts.sum()) for _ in range(2_000)]
    kept = sweep.subsample_sessions(sessions, counts, 0.01, np.random.default_rng(2))
    before = np.bincount(np.concatenate(sessions), minlength=3)
    after = np.bincount(np.concatenate(kept), minlength=3)
    assert after[2] == before[2]  # f <= t: always kept
    for row in (0, 1):
        assert after[row] / before[row] == pytest.approx(
            np.sqrt(0.01 / (counts[row] / counts.sum())), rel=0.03
        )
    # Each session keeps its order (what is left is a subsequence), and the same seed draws the same sample.
    for session, subsampled in zip(sessions, kept, strict=True):
        rest = iter(session.tolist())
        assert all(item in rest for item in subsampled.tolist())
    again = sweep.subsample_sessions(sessions, counts, 0.01, np.random.default_rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(kept, again, strict=True))


def test_subsample_rejects_a_negative_threshold():
    with pytest.raises(ValueError, match="threshold"):
        sweep.subsample_sessions([np.array([0])], np.array([1]), -1e-3, np.random.default_rng(0))


def test_training_pairs_are_the_pipelines_window_pairs():
    sessions = [[0, 1, 0, 2, 3], [4], [1, 1, 2]]
    items, labels = sweep.training_pairs(sessions, 3)
    expected = [
        (p.item, p.label)
        for s in sessions
        for p in sessions_lib.session_pairs(tuple((item, 0) for item in s), 3)
    ]
    assert list(zip(items.tolist(), labels.tolist(), strict=True)) == expected


def test_best_epoch_is_chosen_on_validation_then_mrr_then_earliest():
    def epoch(n, validation, mrr, test):
        scores = {"validation": validation, "validation_mrr": mrr, "test": test, "test_hr50": 0.0}
        return {"epoch": n, "scores": {"next": scores}}

    epochs = [
        epoch(1, 0.1, 0.02, 0.9),
        epoch(2, 0.2, 0.03, 0.0),
        epoch(3, 0.2, 0.05, 0.0),
        epoch(4, 0.2, 0.05, 0.0),
    ]
    assert sweep.best_epoch(epochs, "next")["epoch"] == 3
