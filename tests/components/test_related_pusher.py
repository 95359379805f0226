"""RelatedPusher executor on hand-made artifacts: both blessings -> one version of each, else nothing."""

import json
import os

import pytest
from tfx.types import standard_artifacts

from components.cooccurrence.component import RelatedCandidates
from components.related_evaluator.component import RelatedEvaluation
from components.related_pusher.executor import Executor
from components.scann_indexer.component import ScannIndex
from formats import candidate_table, evaluation_result, serving_layout
from serving import related_sources


def _model(tmp_path):
    serving = tmp_path / "model" / "Format-Serving"
    serving.mkdir(parents=True, exist_ok=True)
    (serving / "saved_model.pb").write_bytes(b"not really a SavedModel")
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    return model


def _blessing(tmp_path, blessed):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _index(tmp_path, blessed, recall):
    directory = tmp_path / "index"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.json").write_text(json.dumps({"recall_at_k": recall}), encoding="utf-8")
    index = ScannIndex()
    index.uri = str(directory)
    index.set_int_custom_property("blessed", int(blessed))
    index.set_float_custom_property("recall_at_k", recall)
    return index


def _push(tmp_path, model_blessed, index_blessed, recall=0.95, extra_inputs=None):
    base = tmp_path / "serving"
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    Executor().Do(
        {
            "model": [_model(tmp_path)],
            "model_blessing": [_blessing(tmp_path, model_blessed)],
            "index": [_index(tmp_path, index_blessed, recall)],
            **(extra_inputs or {}),
        },
        {"pushed_model": [pushed]},
        {"serving_base_dir": str(base)},
    )
    return base, pushed


def _sources(tmp_path):
    """A co-occurrence table, a blend table and an evaluation that found the blend best."""
    inputs = {}
    for name in ("cooccurrence", "blend"):
        table = candidate_table.from_lists({"a": [("b", 1.0)]}, {"a": 1}, top_n=2)
        candidate_table.save_table(table, str(tmp_path / name))
        inputs[name] = [RelatedCandidates()]
        inputs[name][0].uri = str(tmp_path / name)
    rates = {"pin2vec": 0.3, "cooccurrence": 0.2, "blend": 0.35}
    evaluation = {
        "ks": [10],
        "sources": list(rates),
        "best_source": "blend",
        "splits": {"validation": {name: {"hit_rate": {"10": rate}} for name, rate in rates.items()}},
    }
    evaluation_result.write_evaluation(str(tmp_path / "evaluation"), evaluation)
    inputs["evaluation"] = [RelatedEvaluation()]
    inputs["evaluation"][0].uri = str(tmp_path / "evaluation")
    return inputs


def test_a_refused_model_still_pushes_co_occurrence_which_serving_then_answers_from(tmp_path):
    inputs = _sources(tmp_path)
    base, pushed = _push(tmp_path, model_blessed=False, index_blessed=True, extra_inputs=inputs)
    version = pushed.get_int_custom_property("pushed_version")
    assert pushed.get_int_custom_property("pushed") == 1
    assert sorted(os.listdir(base)) == ["cooccurrence", "evaluation", "versions"]  # no model, index, blend
    assert "Evaluator" in pushed.get_string_custom_property("not_pushed_reason")
    served = json.loads((base / "evaluation" / str(version) / serving_layout.SERVED_SOURCES_FILE).read_text())
    assert served["default_source"] == "cooccurrence" and "Evaluator" in served["kept_back"]
    assert related_sources.default_source(str(base)) == "cooccurrence"
    _, again = _push(tmp_path, model_blessed=False, index_blessed=True, extra_inputs=inputs)
    assert again.get_int_custom_property("pushed_version") == version  # the same artifacts: not pushed twice


def test_a_full_push_records_the_evaluations_best_source_as_the_default(tmp_path):
    base, pushed = _push(tmp_path, model_blessed=True, index_blessed=True, extra_inputs=_sources(tmp_path))
    assert pushed.get_string_custom_property("default_source") == "blend"
    assert related_sources.default_source(str(base)) == "blend"


def test_blessed_model_and_index_are_pushed_under_one_version(tmp_path):
    base, pushed = _push(tmp_path, model_blessed=True, index_blessed=True)

    assert pushed.get_int_custom_property("pushed") == 1
    version = pushed.get_int_custom_property("pushed_version")
    assert version > 0
    assert pushed.get_string_custom_property("pushed_destination") == str(base)
    assert os.listdir(base / serving_layout.EMBEDDING_MODEL) == [str(version)]
    assert os.listdir(base / serving_layout.PIN2VEC_SIMILAR_MODEL) == [str(version)]
    embedding = base / serving_layout.EMBEDDING_MODEL / str(version) / "saved_model.pb"
    assert embedding.read_bytes() == b"not really a SavedModel"
    index_json = base / serving_layout.PIN2VEC_SIMILAR_MODEL / str(version) / "index.json"
    assert json.loads(index_json.read_text(encoding="utf-8")) == {"recall_at_k": 0.95}


def test_a_second_push_gets_a_higher_version(tmp_path):
    base, first = _push(tmp_path / "one", model_blessed=True, index_blessed=True)
    pushed = standard_artifacts.PushedModel()
    Executor().Do(
        {
            "model": [_model(tmp_path / "two")],
            "model_blessing": [_blessing(tmp_path / "two", True)],
            "index": [_index(tmp_path / "two", True, 0.99)],
        },
        {"pushed_model": [pushed]},
        {"serving_base_dir": str(base)},
    )
    versions = [
        first.get_int_custom_property("pushed_version"),
        pushed.get_int_custom_property("pushed_version"),
    ]
    assert versions[1] > versions[0]
    assert sorted(int(v) for v in os.listdir(base / serving_layout.PIN2VEC_SIMILAR_MODEL)) == versions


@pytest.mark.parametrize(
    ("model_blessed", "index_blessed", "expected", "unexpected"),
    [
        (False, True, "Evaluator", "recall"),
        (True, False, "recall@k 0.500", "Evaluator"),
    ],
)
def test_nothing_is_pushed_without_both_blessings(
    tmp_path, model_blessed, index_blessed, expected, unexpected
):
    base, pushed = _push(tmp_path, model_blessed, index_blessed, recall=0.5)

    assert not base.exists()
    assert pushed.get_int_custom_property("pushed") == 0
    reason = pushed.get_string_custom_property("not_pushed_reason")
    assert expected in reason
    assert unexpected not in reason


def test_a_refused_model_without_an_evaluation_pushes_nothing_and_says_why(tmp_path):
    inputs = _sources(tmp_path)
    del inputs["evaluation"]  # nothing would record which source serving falls back to
    base, pushed = _push(tmp_path, model_blessed=False, index_blessed=True, extra_inputs=inputs)
    assert not base.exists() and pushed.get_int_custom_property("pushed") == 0
    assert "Evaluator" in pushed.get_string_custom_property("not_pushed_reason")


def test_an_unblessed_next_engagement_index_keeps_the_network_back(tmp_path):
    next_index = _index(tmp_path / "next", blessed=False, recall=0.61)
    inputs = {**_sources(tmp_path), "next_index": [next_index]}
    base, pushed = _push(tmp_path, model_blessed=True, index_blessed=True, extra_inputs=inputs)
    assert "pin2vec (next-engagement) index recall@k 0.610" in pushed.get_string_custom_property(
        "not_pushed_reason"
    )
    assert sorted(os.listdir(base)) == ["cooccurrence", "evaluation", "versions"]


def _with_stability(tmp_path, overlap):
    """_sources with an evaluation that measured `overlap` for its best source (blend) against version 1."""
    inputs = _sources(tmp_path)
    directory = inputs["evaluation"][0].uri
    values = evaluation_result.read_evaluation(directory).raw
    values["stability"] = {"source": "blend", "overlap_at_10": overlap, "served_version": 1, "sources": {}}
    evaluation_result.write_evaluation(directory, values)
    return inputs


def test_the_neighbour_overlap_gate_refuses_the_whole_push_and_serving_keeps_its_version(tmp_path):
    base, first = _push(tmp_path / "one", True, True, extra_inputs=_sources(tmp_path / "one"))
    before = {model: os.listdir(base / model) for model in os.listdir(base)}
    pushed = standard_artifacts.PushedModel()
    inputs = _with_stability(tmp_path / "two", 0.42)
    Executor().Do(
        {
            "model": [_model(tmp_path / "two")],
            "model_blessing": [_blessing(tmp_path / "two", True)],
            "index": [_index(tmp_path / "two", True, 0.99)],
            **inputs,
        },
        {"pushed_model": [pushed]},
        {"serving_base_dir": str(base), "push_config": json.dumps({"min_neighbour_overlap": 0.5})},
    )
    assert pushed.get_int_custom_property("pushed") == 0
    reason = pushed.get_string_custom_property("not_pushed_reason")
    assert "--min-neighbour-overlap 0.5" in reason and "0.420" in reason
    assert pushed.get_float_custom_property("neighbour_overlap_at_10") == pytest.approx(0.42)
    assert {model: os.listdir(base / model) for model in os.listdir(base)} == before  # nothing new
    assert first.get_int_custom_property("pushed") == 1


def test_without_the_gate_a_low_overlap_is_pushed_and_recorded(tmp_path):
    _, pushed = _push(tmp_path, True, True, extra_inputs=_with_stability(tmp_path, 0.42))
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_float_custom_property("neighbour_overlap_at_10") == pytest.approx(0.42)
