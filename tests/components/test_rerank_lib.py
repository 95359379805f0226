"""The learned reranker: features by hand, the conditional logit on planted signals, the honest choice."""

import json
import math

import numpy as np
import pytest

from components.related_evaluator import blend_lib, evaluation_lib, rerank_lib
from components.related_evaluator.metrics_lib import Query
from components.related_evaluator.rerank_lib import RerankSettings

FEATURE = {name: i for i, name in enumerate(rerank_lib.FEATURES)}


def tiny_inputs(pool_per_source=3):
    embedding = {"q": [("a", 0.9), ("b", 0.8), ("q", 0.7)], "a": [("q", 0.9)], "b": [("a", 0.5)]}
    cooccurrence = {"q": [("c", 3.0), ("a", 2.0)], "c": [("b", 1.0), ("q", 0.5)]}
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    stats = rerank_lib.interaction_stats(
        [("q", "a", 10), ("q", "a", 20), ("a", "q", 30), ("c", "q", 100), ("q", "q", 100)], recent_share=0.1
    )
    popularity = {"q": 7, "a": 3, "b": 0, "c": 1}
    return rerank_lib.RerankInputs(
        embedding, cooccurrence, ["q", "a", "b"], vectors, popularity, stats, pool_per_source
    )


def test_interaction_stats_count_direction_and_recency():
    stats = tiny_inputs().stats
    assert stats.forward == {("q", "a"): 2, ("a", "q"): 1, ("c", "q"): 1}  # the self-pair is ignored
    assert stats.label_counts == {"a": 2, "q": 2}
    # Time span 10..100: the last 10% starts at 91, so only the pair at 100 is recent.
    assert stats.recent_label_counts == {"q": 1}
    assert rerank_lib.interaction_stats([], 0.1).forward == {}


def test_pool_is_cooccurrence_then_pin2vec_each_once_without_the_query():
    inputs = tiny_inputs()
    assert rerank_lib.candidate_pool("q", inputs) == ["c", "a", "b"]
    assert rerank_lib.candidate_pool("unknown", inputs) == []
    narrow = tiny_inputs(pool_per_source=1)
    assert rerank_lib.candidate_pool("q", narrow) == ["c", "a"]


def test_features_by_hand():
    inputs = tiny_inputs()
    x = rerank_lib.pool_features("q", ["c", "a", "b"], inputs)
    assert x.shape == (3, len(rerank_lib.FEATURES))
    c, a, b = x
    absent = math.log(4)  # pool_per_source + 1
    assert c[FEATURE["log_cooccurrence_rank"]] == 0.0 and c[FEATURE["in_cooccurrence"]] == 1.0
    assert c[FEATURE["log_pin2vec_rank"]] == absent and c[FEATURE["in_pin2vec"]] == 0.0
    assert c[FEATURE["log_reverse_cooccurrence_rank"]] == pytest.approx(math.log(2))  # q is 2nd in c's list
    assert c[FEATURE["cosine"]] == 0.0  # c has no vector
    assert c[FEATURE["log_backward_count"]] == pytest.approx(math.log(2))
    assert c[FEATURE["log_forward_count"]] == 0.0
    assert a[FEATURE["log_cooccurrence_rank"]] == pytest.approx(math.log(2))
    assert a[FEATURE["log_pin2vec_rank"]] == 0.0
    assert a[FEATURE["log_reverse_pin2vec_rank"]] == 0.0  # q is a's first Pin2Vec neighbour
    assert a[FEATURE["log_count"]] == pytest.approx(math.log(4))  # 2 forward + 1 backward
    assert a[FEATURE["log_forward_count"]] == pytest.approx(math.log(3))
    assert a[FEATURE["cosine"]] == pytest.approx(0.6)
    assert a[FEATURE["cosine_x_log_query_popularity"]] == pytest.approx(0.6 * math.log(8))
    assert a[FEATURE["log_popularity"]] == pytest.approx(math.log(4))
    assert a[FEATURE["recent_share"]] == 0.0
    assert b[FEATURE["log_popularity"]] == 0.0 and b[FEATURE["cosine"]] == 0.0


def planted_groups(n, seed):
    """Pools of 6 where the target is the only candidate with feature 0 high; the rest is noise."""
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(n):
        x = rng.normal(size=(6, len(rerank_lib.FEATURES)))
        target = int(rng.integers(6))
        x[:, 0] = 0.0
        x[target, 0] = 1.0
        groups.append((x, target))
    return groups


def test_conditional_logit_learns_a_planted_signal_and_l2_shrinks_it():
    model = rerank_lib.fit_conditional_logit(planted_groups(200, 0), l2=1.0)
    held_out = planted_groups(100, 1)
    hits = [int(np.argmax(model.score(x))) == t for x, t in held_out]
    assert np.mean(hits) > 0.95  # chance is 1/6
    assert np.argmax(np.abs(model.weights)) == 0
    strong = rerank_lib.fit_conditional_logit(planted_groups(200, 0), l2=1000.0)
    assert abs(strong.weights[0]) < abs(model.weights[0])
    with pytest.raises(ValueError, match="no training queries"):
        rerank_lib.fit_conditional_logit([], l2=1.0)


def test_model_json_round_trip_and_refusals():
    model = rerank_lib.fit_conditional_logit(planted_groups(50, 2), l2=10.0)
    again = rerank_lib.RerankModel.from_json(model.to_json())
    x = planted_groups(1, 3)[0][0]
    assert np.allclose(again.score(x), model.score(x)) and again.l2 == 10.0
    text = model.to_json().replace('"log_count"', '"something_else"')
    with pytest.raises(ValueError, match="features"):
        rerank_lib.RerankModel.from_json(text, "m.json")
    with pytest.raises(ValueError, match=r"m\.json: format_version"):
        rerank_lib.RerankModel.from_json('{"format_version": 99}', "m.json")


def test_ranked_gives_descending_probabilities_with_ties_by_id():
    result = rerank_lib.ranked(["b", "a", "c"], np.array([1.0, 1.0, 3.0]))
    assert [c for c, _ in result] == ["c", "a", "b"]
    assert sum(p for _, p in result) == pytest.approx(1.0)
    assert result[0][1] > result[1][1] == result[2][1]
    assert rerank_lib.ranked([], np.array([])) == []


def test_settings_are_checked():
    with pytest.raises(ValueError, match="l2_grid"):
        RerankSettings(l2_grid=(0.0,))
    with pytest.raises(ValueError, match="recent_share"):
        RerankSettings(recent_share=0.0)
    with pytest.raises(ValueError, match="min_training_queries"):
        RerankSettings(min_training_queries=0)


def direction_world(items=80, per_item=6, seed=0):
    """Each query item q_i has `per_item` candidates that both sources rank in a random order; users engage
    next with the one that training saw *after* q_i (the others were seen before it): only the direction
    of the co-occurrence counts tells the target, which rank fusion cannot see and the reranker can learn."""
    rng = np.random.default_rng(seed)
    embedding, cooccurrence, pairs, queries = {}, {}, [], []
    for i in range(items):
        q = f"q{i}"
        candidates = [f"c{i}_{j}" for j in range(per_item)]
        target = candidates[int(rng.integers(per_item))]
        cooccurrence[q] = [(c, 1.0 / r) for r, c in enumerate(rng.permutation(candidates), 1)]
        embedding[q] = [(c, 1.0 / r) for r, c in enumerate(rng.permutation(candidates), 1)]
        for c in candidates:
            pairs += [(q, c, 5)] * 3 if c == target else [(c, q, 5)] * 3
        queries.append(Query(q, target))
    ids = sorted({x for q, ranked in embedding.items() for x in [q] + [c for c, _ in ranked]})
    vectors = rng.normal(size=(len(ids), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    popularity = {x: 3 for x in ids}
    stats = rerank_lib.interaction_stats(pairs, 0.1)
    inputs = rerank_lib.RerankInputs(embedding, cooccurrence, ids, vectors, popularity, stats, 100)
    return inputs, queries


def halves(queries):
    """(training, validation): disjoint query items, as the rerank and eval splits of different users."""
    return queries[::2], queries[1::2]


def test_choose_reranker_fits_on_training_and_measures_on_validation():
    inputs, queries = direction_world()
    training, validation = halves(queries)
    choice = rerank_lib.choose_reranker(training, validation, inputs, RerankSettings(min_training_queries=20))
    assert choice.training_queries == 40
    assert choice.hit_rate_at_10 == 1.0  # unseen query items: the forward candidate first of 6...
    assert choice.mrr_at_10 > 0.9  # ...and almost always at rank 1 (chance: 0.41)
    assert len(choice.validation_ranks) == len(validation) and set(choice.validation_ranks) == {1}
    assert [s["l2"] for s in choice.sweep] == [1.0, 10.0, 100.0]
    assert choice.model.weights[FEATURE["log_forward_count"]] > 0
    lists = rerank_lib.rerank_all(["q0", "unknown"], inputs, choice.model, top_n=3)
    assert lists["q0"][0][0] == queries[0].target and len(lists["q0"]) == 3 and lists["unknown"] == []


def test_validation_chooses_but_never_fits():
    inputs, queries = direction_world()
    training, validation = halves(queries)
    settings = RerankSettings(min_training_queries=20, l2_grid=(10.0,))
    one = rerank_lib.choose_reranker(training, validation, inputs, settings)
    other = rerank_lib.choose_reranker(training, validation[:5], inputs, settings)
    np.testing.assert_array_equal(one.model.weights, other.model.weights)
    # Trained on the opposite direction (targets seen *before* the query), the model fails on validation.
    backward = [Query(q.item, c) for q in training for c, _ in inputs.cooccurrence[q.item] if c != q.target]
    wrong = rerank_lib.choose_reranker(backward[::5], validation, inputs, settings)
    assert wrong.model.weights[FEATURE["log_forward_count"]] < 0
    assert wrong.hit_rate_at_10 == 1.0 and wrong.mrr_at_10 < 0.3  # 6 candidates fit in 10, but last-ish


def test_too_few_training_queries_means_no_reranker():
    inputs, queries = direction_world(items=10)
    choice = rerank_lib.choose_reranker(queries, queries, inputs, RerankSettings())
    assert choice.model is None and choice.training_queries == 10


def test_evaluator_pushes_the_reranker_only_when_it_beats_rrf_on_validation():
    inputs, queries = direction_world(items=120, per_item=30)
    training, validation = halves(queries)
    splits = {"validation": validation, "test": validation}
    args = (splits, inputs.embedding, inputs.cooccurrence, inputs.popularity, blend_lib.BlendSettings())
    settings = RerankSettings(min_training_queries=20)
    result, blend, _ = evaluation_lib.evaluate_sources(*args, inputs, settings, training)
    record = result["blend"]["rerank"]
    # Ranks alone put the target (1 of 30, in random order) in the top 10 about a third of the time.
    assert record["rrf_validation_hit_rate_at_10"] < 0.6
    assert record["validation_hit_rate_at_10"] > 0.95 and record["training_queries"] == 60
    assert result["blend"]["method"] == "rerank" and result["blend"]["tuned_on"] == "rerank"
    assert result["validation_out_of_sample"] is True
    # The pushed blend's validation figure is the one the choice was made on: out of sample, not refitted.
    assert result["splits"]["validation"]["blend"]["hit_rate"]["10"] == record["validation_hit_rate_at_10"]
    assert result["best_source"] == "blend"
    assert blend["q1"][0][0] == queries[1].target
    assert rerank_lib.RerankModel.from_json(json.dumps(record["model"])).l2 == record["l2"]

    # Six candidates always fit in the top 10: HR@10 ties at 1.0 and RRF, the simpler, is kept.
    inputs, queries = direction_world(items=120, per_item=6)
    training, validation = halves(queries)
    splits = {"validation": validation, "test": validation}
    args = (splits, inputs.embedding, inputs.cooccurrence, inputs.popularity, blend_lib.BlendSettings())
    result, _, _ = evaluation_lib.evaluate_sources(*args, inputs, settings, training)
    assert result["blend"]["method"] == "rrf"
    assert result["blend"]["rerank"]["rrf_validation_hit_rate_at_10"] == 1.0
    disabled, _, _ = evaluation_lib.evaluate_sources(*args, inputs, RerankSettings(enabled=False), training)
    assert disabled["blend"]["method"] == "rrf" and disabled["blend"]["rerank"] is None
    # Without rerank queries (Examples from before the split existed) RRF is tuned on validation, in-sample.
    no_training, _, _ = evaluation_lib.evaluate_sources(*args, inputs, settings)
    assert no_training["blend"]["tuned_on"] == "validation" and not no_training["validation_out_of_sample"]
    assert "no rerank queries" in no_training["blend"]["rerank"]["skipped"]


def test_fit_matches_a_per_pool_newton_reference():
    """The stacked fit gives the weights of the textbook per-pool loop (pools of different sizes)."""
    rng = np.random.default_rng(5)
    d = len(rerank_lib.FEATURES)
    groups = [(rng.normal(size=(n, d)), int(rng.integers(n))) for n in rng.integers(1, 40, size=60)]
    model = rerank_lib.fit_conditional_logit(groups, l2=3.0)

    z_groups = [((x - model.mean) / model.scale, t) for x, t in groups]
    w = np.zeros(d)
    for _ in range(50):
        gradient, hessian = 3.0 * w, 3.0 * np.eye(d)
        for z, target in z_groups:
            p = np.exp(z @ w - (z @ w).max())
            p /= p.sum()
            gradient += p @ z - z[target]
            hessian += (z * p[:, None]).T @ z - np.outer(p @ z, p @ z)
        w -= np.linalg.solve(hessian, gradient)
    np.testing.assert_allclose(model.weights, w, atol=1e-9)
