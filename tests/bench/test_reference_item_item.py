"""bench/reference_item_item: each baseline's scores against hand-computed cases, and its answers."""

from __future__ import annotations

import numpy as np
import pytest

from bench import reference_item_item as ref
from bench.reference_gensim import build_split
from components.session_example_gen.session_settings import SessionSettings
from tests.bench.test_reference_gensim import tiny_log

# Three users over items a, b, c: u0 {a, b}, u1 {a, b, c}, u2 {c}.
X = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])


def test_user_item_matrix_marks_engagements_and_ignores_items_outside_the_catalogue():
    x = ref.user_item_matrix([["a", "b", "a"], ["a", "b", "c", "zzz"], ["c"]], ["a", "b", "c"])
    assert x.tolist() == X.tolist()


def test_cosine_similarity_by_hand():
    s = ref.cosine_similarity(X)
    # a, b share both their users: 1; a, c share u1 of 2 each: 1/2.
    assert s[0, 1] == pytest.approx(1.0) and s[0, 2] == pytest.approx(0.5) and s[1, 2] == pytest.approx(0.5)
    assert np.diag(s).tolist() == [0.0, 0.0, 0.0]


def test_rp3beta_is_a_two_step_walk_divided_by_popularity():
    # From a: users u0, u1 with 1/2 each; u0 -> a, b (1/2 each), u1 -> a, b, c (1/3 each).
    walk = ref.rp3beta(X, 0.0)
    assert walk[0, 1] == pytest.approx(0.5 * 0.5 + 0.5 / 3) and walk[0, 2] == pytest.approx(0.5 / 3)
    assert walk[0, 0] == 0.0
    # beta 1 divides by the candidate's degree (b: 2 users, c: 2 users).
    assert ref.rp3beta(X, 1.0)[0, 1] == pytest.approx((0.5 * 0.5 + 0.5 / 3) / 2)


def test_ease_solves_the_constrained_regression():
    l2 = 0.5
    b = ref.ease(X, l2)
    assert np.diag(b).tolist() == [0.0, 0.0, 0.0]
    # Each column is the ridge regression of that item on the others (the closed form's defining property).
    for j in range(3):
        others = [i for i in range(3) if i != j]
        a = X[:, others]
        ridge = np.linalg.solve(a.T @ a + l2 * np.eye(2), a.T @ X[:, j])
        assert b[others, j] == pytest.approx(ridge)


def test_answers_rank_by_score_without_the_query_and_know_nothing_outside_the_catalogue():
    answer = ref.answer_from_scores(
        np.array([[9.0, 1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 5.0, 9.0]]), ["a", "b", "c"]
    )
    assert answer(["a", "b", "c", "zzz"], 2) == [["c", "b"], ["a", "c"], ["b", "a"], []]


def test_every_method_answers_the_split_and_beats_popularity_on_topic_data():
    from components.related_evaluator import metrics_lib

    split = build_split(tiny_log(), SessionSettings())
    buckets = metrics_lib.popularity_buckets(split.popularity)
    hit_rates = {}
    for method, grid in ref.methods(split):
        _, build = grid[0]
        result = metrics_lib.evaluate_source(split.test, build(), buckets, len(split.catalogue))
        hit_rates[method] = result["hit_rate"]["10"]
    assert set(hit_rates) >= {"popularity", "ItemKNN (cosine over users)", "RP3beta", "EASE"}
    assert all(0.0 <= h <= 1.0 for h in hit_rates.values())
    assert hit_rates["ItemKNN (cosine over users)"] > hit_rates["popularity"]
