"""RelatedEvaluator on hand-made artifacts: a real ScaNN index, a co-occurrence table, held-out queries."""

import json
import os

import numpy as np
import pytest
from tfx.types import artifact_utils, channel_utils, standard_artifacts

from components.cooccurrence.component import RelatedCandidates
from components.related_evaluator import catalogue_lib, executor
from components.related_evaluator.component import RelatedEvaluation, RelatedEvaluator
from components.related_evaluator.executor import Executor
from components.scann_indexer import index_lib
from components.scann_indexer.component import ScannIndex
from components.scann_indexer.index_lib import IndexSettings
from formats import candidate_table, serving_layout
from formats.index_searcher import RelatedItemsSearcher
from tests.components.example_splits import write_split

ITEMS = [f"i{n}" for n in range(30)]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("related_evaluator")
    # Embeddings: items in pairs (i0, i1), (i2, i3), ... are near-duplicates, so Pin2Vec's first neighbour of
    # i2k is i2k+1. Co-occurrence instead knows i(k) -> i(k+10) for k < 10 only.
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(15, 16))
    embeddings = np.repeat(centres, 2, axis=0) + 0.01 * rng.normal(size=(30, 16))
    embeddings = embeddings.astype(np.float32)
    index = ScannIndex()
    index.uri = str(root / "index")
    settings = IndexSettings()
    index_lib.save_index(
        index_lib.build_index(embeddings, settings), ITEMS, embeddings, index.uri, settings, 1.0
    )

    lists = {f"i{k}": [(f"i{k + 10}", 5.0)] for k in range(10)}
    candidates = RelatedCandidates()
    candidates.uri = str(root / "candidates")
    candidate_table.save_table(
        candidate_table.from_lists(lists, {item: 30 - n for n, item in enumerate(ITEMS)}, top_n=5),
        candidates.uri,
    )

    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval", "test", "rerank"])
    examples.set_int_custom_property("events_read", 123)  # as SessionExampleGen records them
    examples.set_string_custom_property("input_fingerprint", "fp1")
    # Validation: 6 queries only Pin2Vec answers, 2 only co-occurrence answers. Test: the same kinds.
    validation = [
        ("i20", "i21"),
        ("i22", "i23"),
        ("i24", "i25"),
        ("i26", "i27"),
        ("i28", "i29"),
        ("i16", "i17"),
    ]
    validation += [("i1", "i11"), ("i3", "i13")]
    test = [("i21", "i20"), ("i23", "i22"), ("i5", "i15"), ("i7", "i17")]
    # Training pairs: what the reranker counts from; rerank queries: what the blend is fitted on (too few
    # here to train the reranker, enough to choose the RRF weight).
    write_split(examples, "train", [("i1", "i11"), ("i3", "i13"), ("i20", "i21")])
    write_split(examples, "eval", validation)
    write_split(examples, "test", test)
    write_split(examples, "rerank", [("i18", "i19"), ("i9", "i19")])
    inputs = {"examples": [examples], "index": [index], "candidates": [candidates]}
    return (*run_evaluator(root / "with_rerank", inputs), inputs)


def run_evaluator(root, inputs, serving_dir=None):
    evaluation, blend = RelatedEvaluation(), RelatedCandidates()
    evaluation.uri, blend.uri = str(root / "evaluation"), str(root / "blend")
    config = {
        "blend": {"weights": [0.0, 0.5, 1.0], "top_n": 5},
        "run_settings": {"source": {"path": "/logs/events.csv"}, "trainer": {"epochs": 3}},
    }
    properties = {"evaluation_config": json.dumps(config), "serving_base_dir": serving_dir}
    Executor().Do(inputs, {"evaluation": [evaluation], "blend": [blend]}, properties)
    with open(os.path.join(evaluation.uri, "evaluation.json")) as f:
        return json.load(f), evaluation, blend


def test_every_source_is_measured_on_both_splits(evaluated):
    result, _, _, _ = evaluated
    test = result["splits"]["test"]
    assert test["pin2vec"]["hit_rate"]["10"] == 0.5  # i21 -> i20 and i23 -> i22
    assert test["cooccurrence"]["hit_rate"]["10"] == 0.5  # i5 -> i15 and i7 -> i17
    assert test["blend"]["hit_rate"]["10"] == 1.0  # both kinds
    assert result["splits"]["validation"]["pin2vec"]["queries"] == 8
    assert result["catalogue_size"] == 30


def test_blend_weight_is_chosen_on_the_rerank_split_and_saved(evaluated):
    result, evaluation, blend, _ = evaluated
    assert result["blend"]["tuned_on"] == "rerank" and result["blend"]["training_queries"] == 2
    assert result["validation_out_of_sample"] is True
    # Weight 0.5: co-occurrence's single candidate first, then Pin2Vec's: every rerank query hits.
    assert [s["weight"] for s in result["blend"]["sweep"]] == [0.0, 0.5, 1.0]
    assert result["blend"]["weight"] == 0.0  # 0.0 and 0.5 both reach HR@10 = 1 (and MRR): the lower wins
    assert result["best_source"] == "blend"
    table = candidate_table.load_table(blend.uri)
    assert [c for c, _ in table.candidates("i5", 2)] == ["i15", "i4"]
    assert evaluation.get_string_custom_property("best_source") == "blend"
    assert evaluation.get_float_custom_property("test_blend_hit_rate_at_10") == 1.0


def test_reranker_needs_enough_rerank_queries_and_rrf_is_kept(evaluated):
    result, evaluation, blend, _ = evaluated
    assert result["blend"]["method"] == "rrf"
    assert "2 rerank-split queries" in result["blend"]["rerank"]["skipped"]
    assert "the reranker needs 50" in result["blend"]["rerank"]["skipped"]
    assert evaluation.get_string_custom_property("blend_method") == "rrf"
    assert candidate_table.load_table(blend.uri).meta["method"] == "rrf"
    assert not os.path.exists(os.path.join(evaluation.uri, "rerank_model.json"))


def test_examples_without_a_rerank_split_tune_the_blend_on_validation(evaluated, tmp_path):
    *_, inputs = evaluated
    examples = standard_artifacts.Examples()
    examples.uri = inputs["examples"][0].uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval", "test"])  # older artifacts
    result, _, _ = run_evaluator(tmp_path, {**inputs, "examples": [examples]})
    assert result["blend"]["tuned_on"] == "validation" and result["validation_out_of_sample"] is False
    assert result["blend"]["method"] == "rrf" and "no rerank queries" in result["blend"]["rerank"]["skipped"]
    assert result["splits"]["test"]["blend"]["hit_rate"]["10"] == 1.0


def test_the_board_table_feeds_the_reranker_pool(evaluated, tmp_path):
    """The rerank query i0 -> i20 is answered by the board table only (i20 is the item farthest from i0, and
    co-occurrence knows i0 -> i10): with the table its target is in the reranker's pool, without it not."""
    *_, inputs = evaluated
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval", "test", "rerank"])
    for split in ("train", "eval", "test"):
        write_split(examples, split, [("i1", "i11"), ("i20", "i21")])
    write_split(examples, "rerank", [("i18", "i19"), ("i9", "i19"), ("i0", "i20")])
    board = RelatedCandidates()
    board.uri = str(tmp_path / "board")
    candidate_table.save_table(candidate_table.from_lists({"i0": [("i20", 1.0)]}, {}, top_n=5), board.uri)
    with_board = {**inputs, "examples": [examples], "board": [board]}
    result, _, _ = run_evaluator(tmp_path / "with_board", with_board)
    assert "3 rerank-split queries have their target" in result["blend"]["rerank"]["skipped"]
    assert "board" in result["splits"]["test"]
    result, _, _ = run_evaluator(tmp_path / "without_board", {**inputs, "examples": [examples]})
    assert "2 rerank-split queries have their target" in result["blend"]["rerank"]["skipped"]


def test_report_files_are_written(evaluated):
    _, evaluation, _, _ = evaluated
    for name in ("report.html", "report.md"):
        with open(os.path.join(evaluation.uri, name), encoding="utf-8") as f:
            text = f.read()
        assert "blend" in text and "cooccurrence" in text
        assert "weight sweep (rerank)" in text.lower() and "not trained" in text


def test_evaluation_records_its_provenance_and_a_map_of_the_embeddings(evaluated):
    result, evaluation, _, _ = evaluated
    provenance = result["provenance"]
    assert provenance["inputs"] == [
        {"name": "engagement log", "path": "/logs/events.csv", "fingerprint": "fp1"}
    ]
    assert provenance["counts"]["events_read"] == 123 and provenance["counts"]["catalogue_size"] == 30
    assert provenance["settings"] == {"source.path": "/logs/events.csv", "trainer.epochs": 3}
    code = provenance["code"]
    assert code.get("git_commit") or code.get("package_version")  # whichever this checkout gives
    assert code["evaluator_version"] == ""  # the hand-made exec properties carry none
    assert provenance["version"]["pushed"] is None  # written before the push: a candidate
    embedding_map = result["embedding_map"]
    assert sorted(embedding_map["items"]) == sorted(ITEMS) and embedding_map["total_items"] == 30
    assert embedding_map["marked"][: len(result["examples"])] == [e["item"] for e in result["examples"]]
    # The near-duplicate pairs (i0, i1), (i2, i3), ... land next to each other on the map.
    position = {
        item: (x, y)
        for item, x, y in zip(embedding_map["items"], embedding_map["x"], embedding_map["y"], strict=True)
    }
    spread = max(embedding_map["x"]) - min(embedding_map["x"])
    assert all(
        abs(position[f"i{2 * k}"][0] - position[f"i{2 * k + 1}"][0]) < 0.05 * spread for k in range(15)
    )
    with open(os.path.join(evaluation.uri, "report.html"), encoding="utf-8") as f:
        page = f.read()
    assert "Item embeddings in 2-D (PCA)" in page and "(fingerprint fp1)" in page


def test_component_spec():
    channel = lambda t: channel_utils.as_channel([t()])  # noqa: E731
    component = RelatedEvaluator(
        channel(standard_artifacts.Examples),
        channel(ScannIndex),
        channel(RelatedCandidates),
        titles_path="t.tsv",
        run_settings={"trainer": {"epochs": 3}},
    )
    assert json.loads(component.exec_properties["evaluation_config"])["titles_path"] == "t.tsv"
    assert json.loads(component.exec_properties["evaluation_config"])["run_settings"] == {
        "trainer": {"epochs": 3}
    }
    assert set(component.outputs) == {"evaluation", "blend"}


def test_every_other_source_is_compared_to_the_best_on_the_same_queries(evaluated):
    result, *_ = evaluated
    comparisons = result["comparisons"]
    assert comparisons["against"] == result["best_source"] == "blend" and comparisons["k"] == 10
    for split in ("validation", "test"):
        metrics = result["splits"][split]
        for source in ("pin2vec", "cooccurrence"):
            paired = comparisons["splits"][split][source]
            # The paired difference is the difference of the two hit rates, query for query.
            expected = metrics[source]["hit_rate"]["10"] - metrics["blend"]["hit_rate"]["10"]
            assert paired["difference"] == pytest.approx(expected)
            assert paired["low"] <= paired["difference"] <= paired["high"]
            assert sum(b["queries"] for b in paired["buckets"].values()) == metrics[source]["queries"]
        assert "blend" not in comparisons["splits"][split]
    # On test the blend hits all 4 queries and each source 2 of them: 2 losses, no win.
    for source in ("pin2vec", "cooccurrence"):
        paired = comparisons["splits"]["test"][source]
        assert (paired["queries"], paired["wins"], paired["losses"]) == (4, 0, 2)


def test_stability_says_nothing_is_served_and_then_measures_the_served_version(evaluated, tmp_path):
    result, evaluation, blend, inputs = evaluated
    assert result["stability"]["overlap_at_10"] is None and result["stability"]["reason"]
    # Serve exactly what this evaluation measured: every list survives, overall and in each bucket.
    serving = str(tmp_path / "serving")
    serving_layout.publish_version(
        serving,
        {
            "pin2vec": inputs["index"][0].uri,  # no next-engagement index here: the cosine one is pin2vec
            "cooccurrence": inputs["candidates"][0].uri,
            "blend": blend.uri,
            "evaluation": evaluation.uri,
        },
        {"run": "first"},
    )
    again, evaluation_again, _ = run_evaluator(tmp_path / "again", inputs, serving_dir=serving)
    stability = again["stability"]
    assert stability["source"] == again["best_source"] and stability["reason"] is None
    assert stability["overlap_at_10"] == 1.0
    assert set(stability["sources"]) == {"pin2vec", "cooccurrence", "blend"}
    assert all(s["overlap_at_10"] == 1.0 for s in stability["sources"].values())
    measured = [b for b in stability["buckets"].values() if b["items"]]
    assert measured and all(b["overlap_at_10"] == 1.0 for b in measured)
    assert evaluation_again.get_float_custom_property("neighbour_overlap_at_10") == 1.0
    with open(os.path.join(evaluation_again.uri, "report.md"), encoding="utf-8") as f:
        assert "Neighbour stability against the served version" in f.read()


def test_coverage_of_the_window_follows_the_serving_fallback_order(evaluated, tmp_path):
    """Every indexed item is answered by the best source; a rare item only the coldstart table knows, by it;
    an item engaged with nothing else, by the popular fallback: 100% of the engaged items."""
    *_, inputs = evaluated
    cold = RelatedCandidates()
    cold.uri = str(tmp_path / "coldstart")
    engaged = {item: 2 for item in ITEMS} | {"rare": 1, "lonely": 1}
    lists = {"rare": [("i0", 1.0)], "i0": [("rare", 1.0)]}
    candidate_table.save_table(candidate_table.from_lists(lists, engaged, top_n=5), cold.uri)
    result, evaluation, _ = run_evaluator(tmp_path / "with_coldstart", {**inputs, "coldstart": [cold]})
    coverage = result["coverage"]
    assert coverage["engaged_items"] == 32 and coverage["answered"] == 1.0
    assert coverage["order"][0] == result["best_source"] and coverage["order"][-1] == "popular"
    assert coverage["by_source"]["coldstart"] == pytest.approx(1 / 32)
    assert coverage["by_source"]["popular"] == pytest.approx(1 / 32)
    assert coverage["by_source"][result["best_source"]] == pytest.approx(30 / 32)
    with open(os.path.join(evaluation.uri, "report.md")) as f:
        assert "Items engaged in the window answered: 100.0% of 32" in f.read()
    assert "coverage" not in evaluated[0]  # without the table: no figure


def test_split_rows_are_the_split_ids_looked_up_in_the_catalogue(evaluated):
    *_, inputs = evaluated
    examples = inputs["examples"][0]
    catalogue = catalogue_lib.catalogue_of([f"i{n}" for n in range(0, 30, 2)])  # odd ids: outside it
    for split in ("train", "eval"):
        by_ids = [
            (catalogue.rows(items).tolist(), catalogue.rows(labels).tolist(), times.tolist())
            for items, labels, times in executor.split_batches(examples, split, with_timestamp=True)
        ]
        by_rows = [
            (items.tolist(), labels.tolist(), times.tolist())
            for items, labels, times in executor.split_rows(examples, split, catalogue, with_timestamp=True)
        ]
        assert by_rows == by_ids and any(-1 in items for items, _, _ in by_rows)
    empty = catalogue_lib.catalogue_of([])
    ((items, labels),) = executor.split_rows(examples, "eval", empty, with_timestamp=False)
    assert len(items) == 8 and set(items.tolist()) == set(labels.tolist()) == {-1}


def test_the_pin2vec_source_is_what_the_index_answers(evaluated):
    *_, inputs = evaluated
    searcher = RelatedItemsSearcher(inputs["index"][0].uri, max_k=5)
    catalogue = catalogue_lib.catalogue_of(ITEMS, ["a-extra", "zz"])  # rows differ from the index's
    source = executor.pin2vec_source(searcher, catalogue, top_n=7)  # deeper than the index answers
    answers = searcher.related(ITEMS, k=5)
    assert source.ids.shape == (32, 7)
    for item, expected in answers.items():
        row = catalogue.rows([item])[0]
        assert catalogue.names(source.ids[row, :5]) == [other for other, _ in expected]
        assert source.scores[row, :5].tolist() == pytest.approx([score for _, score in expected])
        assert source.ids[row, 5:].tolist() == [-1, -1]
    assert (source.ids[catalogue.rows(["a-extra", "zz"])] == -1).all()


def test_a_searched_source_searches_only_the_rows_read_and_answers_as_the_whole_source(evaluated):
    *_, inputs = evaluated
    searcher = RelatedItemsSearcher(inputs["index"][0].uri, max_k=5)
    catalogue = catalogue_lib.catalogue_of(ITEMS, ["a-extra", "zz"])
    whole = catalogue_lib.source_from_index(searcher, catalogue, 7)
    lazy = catalogue_lib.SearchedSource(searcher, catalogue, 7, chunk=2)
    assert len(lazy) == 32 and lazy.searched == 0
    items = np.array([5, -1, 5, 31, 0, 17])  # a duplicate, an unknown item, an item outside the index
    assert lazy.rows(items).tolist() == whole.rows(items).tolist()
    assert lazy.searched == 4  # 5, 31, 0, 17: each once
    # ScaNN's scores may differ in the last float bits with the batch a row is searched in
    ranked, expected = lazy.ranked(catalogue, 17, 3), whole.ranked(catalogue, 17, 3)
    assert [c for c, _ in ranked] == [c for c, _ in expected] and lazy.searched == 4
    assert [s for _, s in ranked] == pytest.approx([s for _, s in expected], rel=1e-5)
    assert lazy.ids.tolist() == whole.ids.tolist() and lazy.searched == 32
    np.testing.assert_allclose(lazy.scores, whole.scores, rtol=1e-5)
