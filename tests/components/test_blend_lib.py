"""Blending on constructed candidate lists, and choosing the weight on validation queries; the vectorised
fusion against a straightforward per-item reference."""

import dataclasses

import numpy as np
import pytest

from components.related_evaluator import blend_lib, catalogue_lib, evaluation_lib
from components.related_evaluator.blend_lib import BlendSettings
from components.related_evaluator.metrics_lib import rank_hit_rate, rank_mrr

EMB = [("e1", 0.9), ("both", 0.8), ("e2", 0.7)]
CO = [("c1", 30.0), ("c2", 20.0), ("both", 10.0)]


def reference_fuse(embedding, cooccurrence, weight, rrf_k, top_n):
    """The per-item fusion the arrays must reproduce (the evaluator's original code)."""
    scores = {}
    for share, ranked in ((weight, embedding), (1.0 - weight, cooccurrence)):
        if share <= 0.0:
            continue
        for rank, (candidate, _) in enumerate(ranked, 1):
            scores[candidate] = scores.get(candidate, 0.0) + share / (rrf_k + rank)
    if weight <= 0.0:
        for rank, (candidate, _) in enumerate(embedding, 1):
            scores.setdefault(candidate, -rank / (len(embedding) + 1))
    if weight >= 1.0:
        for rank, (candidate, _) in enumerate(cooccurrence, 1):
            scores.setdefault(candidate, -rank / (len(cooccurrence) + 1))
    return sorted(scores.items(), key=lambda cs: (-cs[1], cs[0]))[:top_n]


def reference_blend_item(embedding, cooccurrence, popularity, weight, settings):
    if embedding and popularity < settings.min_embedding_count and cooccurrence:
        embedding = None
    return reference_fuse(embedding or [], cooccurrence or [], weight, settings.rrf_k, settings.top_n)


def fuse(embedding, cooccurrence, weight, rrf_k, top_n, popularity=0, min_embedding_count=0):
    """fuse_rows on one item, back as (id, score) pairs."""
    catalogue = catalogue_lib.catalogue_of([c for c, _ in embedding], [c for c, _ in cooccurrence], ["q"])
    width = max(len(embedding), len(cooccurrence), 1)
    sources = [
        catalogue_lib.source_from_lists({"q": ranked}, catalogue, width)
        for ranked in (embedding, cooccurrence)
    ]
    row = catalogue.rows(["q"])
    settings = BlendSettings(rrf_k=rrf_k, top_n=top_n, min_embedding_count=min_embedding_count)
    ids, scores = blend_lib.fuse_rows(
        sources[0].rows(row), sources[1].rows(row), np.array([popularity]), weight, settings
    )
    return [(str(catalogue.ids[c]), float(s)) for c, s in zip(ids[0], scores[0], strict=True) if c >= 0]


def test_fusion_by_hand():
    fused = dict(fuse(EMB, CO, weight=0.5, rrf_k=0.0, top_n=10))
    assert fused["both"] == pytest.approx(0.5 / 2 + 0.5 / 3)
    assert fused["e1"] == fused["c1"] == pytest.approx(0.5)
    order = [c for c, _ in fuse(EMB, CO, weight=0.5, rrf_k=0.0, top_n=10)]
    assert order[:3] == ["c1", "e1", "both"]  # equal scores break ties by id


def test_weight_zero_is_cooccurrence_then_embedding_fill():
    order = [c for c, _ in fuse(EMB, CO[:1], weight=0.0, rrf_k=10.0, top_n=3)]
    assert order == ["c1", "e1", "both"]  # co-occurrence knows one candidate; embeddings fill the rest


def test_weight_one_is_embedding_then_cooccurrence_fill():
    order = [c for c, _ in fuse(EMB[:1], CO, weight=1.0, rrf_k=10.0, top_n=3)]
    assert order == ["e1", "c1", "c2"]


def test_sparse_items_fall_back_to_cooccurrence_only():
    rare = [c for c, _ in fuse(EMB, CO, 0.9, 10.0, 100, popularity=2, min_embedding_count=5)]
    assert rare == ["c1", "c2", "both"]
    # ... unless co-occurrence has nothing: then the embedding is all there is.
    alone = [c for c, _ in fuse(EMB, [], 0.9, 10.0, 100, popularity=2, min_embedding_count=5)]
    assert alone == ["e1", "both", "e2"]


def random_lists(rng, items, names, width):
    """item -> a random ranked list (short, empty or missing), candidates drawn from `names`."""
    lists = {}
    for item in items:
        n = int(rng.integers(0, width + 1))
        if rng.random() < 0.1:
            continue
        chosen = rng.choice(names, size=min(n, len(names)), replace=False)
        lists[item] = [(str(c), float(rng.integers(0, 3))) for c in chosen]
    return lists


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_fusion_equals_the_per_item_reference(seed):
    rng = np.random.default_rng(seed)
    names = [f"x{i:02d}" for i in range(30)]  # few names: many shared candidates, many score ties
    items = names[:20]
    embedding, cooccurrence = random_lists(rng, items, names, 8), random_lists(rng, items, names, 8)
    popularity = {item: int(rng.integers(0, 6)) for item in names}
    candidates = evaluation_lib.candidates_from_lists(embedding, cooccurrence, popularity, top_n=8)
    rows = candidates.catalogue.rows([*items, "unknown"])
    for weight in (0.0, 0.3, 0.5, 1.0):
        for rrf_k, top_n, min_count in ((0.0, 5, 0), (10.0, 16, 3), (1.0, 3, 0)):
            settings = BlendSettings(rrf_k=rrf_k, top_n=top_n, min_embedding_count=min_count)
            ids, scores = evaluation_lib.blend_rows(rows, candidates, weight, settings)
            for position, item in enumerate([*items, "unknown"]):
                expected = reference_blend_item(
                    embedding.get(item), cooccurrence.get(item), popularity.get(item, 0), weight, settings
                )
                got = [
                    (str(candidates.catalogue.ids[c]), float(s))
                    for c, s in zip(ids[position], scores[position], strict=True)
                    if c >= 0
                ]
                assert [c for c, _ in got] == [c for c, _ in expected], (item, weight, rrf_k)
                np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12)


def test_blend_all_chunks_give_the_same_rows():
    rng = np.random.default_rng(9)
    names = [f"x{i:02d}" for i in range(30)]
    embedding, cooccurrence = random_lists(rng, names, names, 6), random_lists(rng, names, names, 6)
    candidates = evaluation_lib.candidates_from_lists(embedding, cooccurrence, {}, top_n=6)
    settings = BlendSettings(top_n=7)
    whole = evaluation_lib.blend_all(candidates, 0.4, settings)
    chunked = evaluation_lib.blend_all(candidates, 0.4, settings, chunk=4)
    np.testing.assert_array_equal(whole.ids, chunked.ids)
    assert whole.ids.shape == (len(candidates.catalogue), 7) and whole.scores.dtype == np.float32
    rows_of = lambda items: evaluation_lib.blend_rows(items, candidates, 0.4, settings)  # noqa: E731
    one = evaluation_lib.all_rows(len(candidates.catalogue), 7, rows_of, chunk=4, workers=1)
    three = evaluation_lib.all_rows(len(candidates.catalogue), 7, rows_of, chunk=4, workers=3)
    np.testing.assert_array_equal(one.ids, whole.ids)
    np.testing.assert_array_equal(three.ids, whole.ids)
    np.testing.assert_array_equal(three.scores, whole.scores)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="weights"):
        BlendSettings(weights=(1.5,))
    with pytest.raises(ValueError, match="rrf_k"):
        BlendSettings(rrf_k=-1)


def queries(candidates, pairs):
    return catalogue_lib.queries_from(pairs, candidates.catalogue)


def test_choose_weight_picks_the_best_validation_hit_rate():
    # Embedding lists are right for q1 and q2, co-occurrence only for q3: a high weight wins.
    embedding = {"q1": [("t1", 1.0)], "q2": [("t2", 1.0)], "q3": [("x", 1.0)]}
    cooccurrence = {"q1": [(f"n{i}", 1.0) for i in range(12)], "q2": [], "q3": [("t3", 5.0)]}
    candidates = evaluation_lib.candidates_from_lists(embedding, cooccurrence, {}, top_n=100)
    validation = queries(candidates, [("q1", "t1"), ("q2", "t2"), ("q3", "t3")])
    settings = BlendSettings(weights=(0.0, 1.0))
    weight, sweep = evaluation_lib.choose_blend_weight(validation, candidates, settings)
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
    candidates = evaluation_lib.candidates_from_lists(embedding, cooccurrence, {}, top_n=100)
    validation = queries(candidates, [("q1", "t1")])
    settings = BlendSettings(weights=(0.5,), rrf_ks=(0.0, 60.0))
    chosen, weight, sweep, per_k = evaluation_lib.choose_blend(validation, candidates, settings)
    assert [p["rrf_k"] for p in per_k] == [0.0, 60.0]
    assert per_k[0]["mrr_at_10"] < per_k[1]["mrr_at_10"] == 1.0
    assert chosen.rrf_k == 60.0 and weight == 0.5
    assert sweep[0]["hit_rate_at_10"] == 1.0


def test_rrf_weight_is_fitted_on_the_rerank_queries_so_validation_stays_out_of_sample():
    # The rerank (training) queries want Pin2Vec first, validation wants co-occurrence first: the weight
    # follows the training queries, and validation only measures it.
    embedding = {"q1": [("t1", 1.0)], "q2": [("x", 1.0)]}
    cooccurrence = {"q1": [(f"n{i}", 1.0) for i in range(12)], "q2": [("t2", 5.0)]}
    candidates = evaluation_lib.candidates_from_lists(embedding, cooccurrence, {}, top_n=100)
    training = queries(candidates, [("q1", "t1")])
    splits = {
        "validation": queries(candidates, [("q2", "t2"), ("q1", "n0")]),
        "test": queries(candidates, [("q2", "t2")]),
    }
    settings = BlendSettings(weights=(0.0, 1.0), rrf_ks=(60.0,))
    honest, _, _ = evaluation_lib.evaluate_sources(splits, candidates, settings, training=training)
    assert honest["blend"]["weight"] == 1.0 and honest["blend"]["tuned_on"] == "rerank"
    assert honest["validation_out_of_sample"] and honest["blend"]["training_queries"] == 1
    assert honest["splits"]["validation"]["blend"]["mrr"]["10"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    in_sample, _, _ = evaluation_lib.evaluate_sources(splits, candidates, settings)
    assert in_sample["blend"]["weight"] == 0.0 and in_sample["blend"]["tuned_on"] == "validation"
    assert in_sample["splits"]["validation"]["blend"]["mrr"]["10"] == 1.0


def test_an_extra_source_is_measured_compared_and_shown_but_not_blended():
    # pin2vec_similar answers q1 right and q2 wrong; the blend fuses only pin2vec and co-occurrence.
    embedding = {"q1": [("x", 1.0)], "q2": [("t2", 1.0)]}
    cooccurrence = {"q1": [("y", 1.0)], "q2": [("z", 1.0)]}
    popularity = {"q1": 3, "q2": 2, "t1": 1, "t2": 1}
    base = evaluation_lib.candidates_from_lists(embedding, cooccurrence, popularity, top_n=10)
    similar = catalogue_lib.source_from_lists({"q1": [("t1", 0.9)], "q2": [("x", 0.5)]}, base.catalogue, 10)
    candidates = dataclasses.replace(base, extra={"pin2vec_similar": similar})
    assert list(candidates.unblended()) == ["pin2vec", "pin2vec_similar", "cooccurrence"]
    splits = {"validation": queries(candidates, [("q1", "t1"), ("q2", "t2")])}
    splits["test"] = splits["validation"]
    result, _, _ = evaluation_lib.evaluate_sources(splits, candidates, BlendSettings(weights=(1.0,)))
    assert result["sources"] == ["pin2vec", "pin2vec_similar", "cooccurrence", "blend"]
    test = result["splits"]["test"]
    assert test["pin2vec_similar"]["hit_rate"]["10"] == test["pin2vec"]["hit_rate"]["10"] == 0.5
    assert test["blend"]["hit_rate"]["10"] == 0.5  # weight 1.0: the blend is pin2vec's lists, not similar's
    assert result["best_source"] == "pin2vec"  # a tie goes to the earlier source
    assert "pin2vec_similar" in result["comparisons"]["splits"]["test"]
    assert result["examples"][0]["lists"]["pin2vec_similar"]
    with pytest.raises(ValueError, match="clash"):
        dataclasses.replace(base, extra={"blend": similar})


@pytest.mark.parametrize("min_embedding_count", [0, 3])
def test_the_weight_sweep_is_the_sweep_of_ranked_lists(min_embedding_count):
    """The sweep's ranks, computed without ranking lists, are those of fuse_rows' lists: the query item (in
    its own lists here), ties, unknown items, short top_n and the sparse-item fallback included."""
    rng = np.random.default_rng(5)
    names = [f"x{i:03d}" for i in range(60)]
    embedding, cooccurrence = random_lists(rng, names, names, 40), random_lists(rng, names, names, 40)
    popularity = {name: int(rng.integers(0, 6)) for name in names}
    candidates = evaluation_lib.candidates_from_lists(embedding, cooccurrence, popularity, top_n=40)
    pairs = [(str(a), str(b)) for a, b in rng.choice([*names, "unknown"], size=(400, 2))]
    pairs += [(a, a) for a in names[:5]]  # the query item as its own target: never a hit
    queries = catalogue_lib.queries_from(pairs, candidates.catalogue)
    for rrf_k, top_n in ((0.0, 50), (1.0, 50), (60.0, 50), (10.0, 5)):
        settings = BlendSettings(top_n=top_n, rrf_k=rrf_k, min_embedding_count=min_embedding_count)
        weight, sweep = evaluation_lib.choose_blend_weight(queries, candidates, settings)
        full = []
        for w in settings.weights:
            ranks = evaluation_lib.query_ranks(
                queries, lambda items, w=w, s=settings: evaluation_lib.blend_rows(items, candidates, w, s)
            )
            full.append(
                {"weight": w, "hit_rate_at_10": rank_hit_rate(ranks, 10), "mrr_at_10": rank_mrr(ranks, 10)}
            )
        assert sweep == full and weight in settings.weights
        assert len({s["hit_rate_at_10"] for s in sweep}) > 1  # the grid points differ
