"""Blending on constructed candidate lists, and choosing the weight on validation queries."""

import pytest

from components.related_evaluator import blend_lib, evaluation_lib
from components.related_evaluator.blend_lib import BlendSettings
from components.related_evaluator.metrics_lib import Query

EMB = [("e1", 0.9), ("both", 0.8), ("e2", 0.7)]
CO = [("c1", 30.0), ("c2", 20.0), ("both", 10.0)]


def test_fusion_by_hand():
    fused = dict(blend_lib.fuse(EMB, CO, weight=0.5, rrf_k=0.0, top_n=10))
    assert fused["both"] == pytest.approx(0.5 / 2 + 0.5 / 3)
    assert fused["e1"] == fused["c1"] == pytest.approx(0.5)
    order = [c for c, _ in blend_lib.fuse(EMB, CO, weight=0.5, rrf_k=0.0, top_n=10)]
    assert order[:3] == ["c1", "e1", "both"]  # equal scores break ties by id


def test_weight_zero_is_cooccurrence_then_embedding_fill():
    order = [c for c, _ in blend_lib.fuse(EMB, CO[:1], weight=0.0, rrf_k=10.0, top_n=3)]
    assert order == ["c1", "e1", "both"]  # co-occurrence knows one candidate; embeddings fill the rest


def test_weight_one_is_embedding_then_cooccurrence_fill():
    order = [c for c, _ in blend_lib.fuse(EMB[:1], CO, weight=1.0, rrf_k=10.0, top_n=3)]
    assert order == ["e1", "c1", "c2"]


def test_sparse_items_fall_back_to_cooccurrence_only():
    settings = BlendSettings(min_embedding_count=5)
    rare = [c for c, _ in blend_lib.blend_item(EMB, CO, popularity=2, weight=0.9, settings=settings)]
    assert rare == ["c1", "c2", "both"]
    # ... unless co-occurrence has nothing: then the embedding is all there is.
    alone = [c for c, _ in blend_lib.blend_item(EMB, [], popularity=2, weight=0.9, settings=settings)]
    assert alone == ["e1", "both", "e2"]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="weights"):
        BlendSettings(weights=(1.5,))
    with pytest.raises(ValueError, match="rrf_k"):
        BlendSettings(rrf_k=-1)


def test_choose_weight_picks_the_best_validation_hit_rate():
    # Embedding lists are right for q1 and q2, co-occurrence only for q3: a high weight wins.
    embedding = {"q1": [("t1", 1.0)], "q2": [("t2", 1.0)], "q3": [("x", 1.0)]}
    cooccurrence = {"q1": [(f"n{i}", 1.0) for i in range(12)], "q2": [], "q3": [("t3", 5.0)]}
    validation = [Query("q1", "t1"), Query("q2", "t2"), Query("q3", "t3")]
    settings = BlendSettings(weights=(0.0, 1.0))
    weight, sweep = evaluation_lib.choose_blend_weight(validation, embedding, cooccurrence, {}, settings)
    assert [s["weight"] for s in sweep] == [0.0, 1.0]
    # weight 0: q1's target is pushed past 10 by 12 co-occurrence candidates; q2 and q3 hit.
    assert sweep[0]["hit_rate_at_10"] == pytest.approx(2 / 3)
    assert sweep[1]["hit_rate_at_10"] == pytest.approx(1.0)
    assert weight == 1.0


def test_best_source_prefers_hit_rate_then_mrr():
    metrics = {
        "pin2vec": {"hit_rate": {"10": 0.1}, "mrr": {"10": 0.05}},
        "cooccurrence": {"hit_rate": {"10": 0.2}, "mrr": {"10": 0.04}},
        "blend": {"hit_rate": {"10": 0.2}, "mrr": {"10": 0.06}},
    }
    assert evaluation_lib.best_source(metrics) == "blend"


def test_choose_blend_searches_the_fusion_constant_too():
    # q1's target is Pin2Vec's 2nd answer and co-occurrence's 3rd; with rrf_k=0 and weight 0.5, the two
    # co-occurrence leaders (1/1, 1/2 of one half) outrank it, so only a larger constant lifts it to the top.
    embedding = {"q1": [("x", 1.0), ("t1", 0.9)]}
    cooccurrence = {"q1": [("c1", 3.0), ("c2", 2.0), ("t1", 1.0)]}
    validation = [Query("q1", "t1")]
    settings = BlendSettings(weights=(0.5,), rrf_ks=(0.0, 60.0))
    chosen, weight, sweep, per_k = evaluation_lib.choose_blend(
        validation, embedding, cooccurrence, {}, settings
    )
    assert [p["rrf_k"] for p in per_k] == [0.0, 60.0]
    assert per_k[0]["mrr_at_10"] < per_k[1]["mrr_at_10"] == 1.0
    assert chosen.rrf_k == 60.0 and weight == 0.5
    assert sweep[0]["hit_rate_at_10"] == 1.0


def test_rrf_weight_is_fitted_on_the_rerank_queries_so_validation_stays_out_of_sample():
    # The rerank (training) queries want Pin2Vec first, validation wants co-occurrence first: the weight
    # follows the training queries, and validation only measures it.
    embedding = {"q1": [("t1", 1.0)], "q2": [("x", 1.0)]}
    cooccurrence = {"q1": [(f"n{i}", 1.0) for i in range(12)], "q2": [("t2", 5.0)]}
    training = [Query("q1", "t1")]
    splits = {"validation": [Query("q2", "t2"), Query("q1", "n0")], "test": [Query("q2", "t2")]}
    settings = BlendSettings(weights=(0.0, 1.0), rrf_ks=(60.0,))
    args = (splits, embedding, cooccurrence, {}, settings)
    honest, _, _ = evaluation_lib.evaluate_sources(*args, training=training)
    assert honest["blend"]["weight"] == 1.0 and honest["blend"]["tuned_on"] == "rerank"
    assert honest["validation_out_of_sample"] and honest["blend"]["training_queries"] == 1
    assert honest["splits"]["validation"]["blend"]["mrr"]["10"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    in_sample, _, _ = evaluation_lib.evaluate_sources(*args)
    assert in_sample["blend"]["weight"] == 0.0 and in_sample["blend"]["tuned_on"] == "validation"
    assert in_sample["splits"]["validation"]["blend"]["mrr"]["10"] == 1.0
