"""push_policy: why a model/index pair is refused."""

import pytest

from components.related_pusher import push_policy


@pytest.mark.parametrize(
    ("model_blessed", "index_blessed", "expected"),
    [
        (True, True, []),
        (False, True, ["Evaluator"]),
        (True, False, ["recall@k 0.420"]),
        (False, False, ["Evaluator", "recall@k 0.420"]),
    ],
)
def test_refusal_reasons(model_blessed, index_blessed, expected):
    reasons = push_policy.refusal_reasons(model_blessed, index_blessed, index_recall=0.42)
    assert len(reasons) == len(expected)
    for reason, fragment in zip(reasons, expected, strict=True):
        assert fragment in reason


ALL = ["cooccurrence", "board", "blend", "evaluation", "pin2vec_similar", "pin2vec", "embedding"]


def test_everything_goes_out_when_nothing_is_refused():
    assert push_policy.models_to_push(ALL, refused=False) == ALL


def test_a_refused_network_keeps_back_everything_built_from_it_and_nothing_else():
    assert push_policy.models_to_push(ALL, refused=True) == ["cooccurrence", "board", "evaluation"]


def test_an_evaluation_alone_is_not_pushed():
    assert push_policy.models_to_push(["evaluation", "pin2vec_similar", "embedding"], refused=True) == []


EVALUATION = {
    "best_source": "blend",
    "sources": ["pin2vec", "cooccurrence", "board", "blend"],
    "splits": {
        "validation": {
            name: {"hit_rate": {"10": rate}}
            for name, rate in (("pin2vec", 0.3), ("cooccurrence", 0.2), ("board", 0.25), ("blend", 0.35))
        }
    },
}


def test_default_source_is_the_best_when_it_was_pushed_else_the_best_of_the_pushed():
    assert push_policy.default_source(EVALUATION, ALL) == "blend"
    assert push_policy.default_source(EVALUATION, ["cooccurrence", "board", "evaluation"]) == "board"
    assert push_policy.default_source(EVALUATION, ["cooccurrence", "evaluation"]) == "cooccurrence"
    assert push_policy.default_source(None, ["cooccurrence"]) == "cooccurrence"
    assert push_policy.default_source(EVALUATION, ["evaluation"]) is None


def _evaluation(overlap, source="blend", per_source=None, served_version=7):
    """An evaluation.json dict whose `stability` headline is `source` at `overlap`."""
    stability = {"source": source, "overlap_at_10": overlap, "served_version": served_version, "sources": {}}
    if overlap is None:
        stability["reason"] = "nothing was served under /s when this candidate was evaluated"
    for name, value in (per_source or {}).items():
        stability["sources"][name] = {"overlap_at_10": value, "served_version": served_version}
    return {"best_source": source, "stability": stability}


def test_the_neighbour_overlap_gate_is_off_by_default():
    settings = push_policy.PushSettings()
    assert settings.min_neighbour_overlap is None
    assert push_policy.neighbour_overlap_refusal(_evaluation(0.0), "blend", settings) is None


def test_a_reshuffle_below_the_threshold_refuses_the_push_naming_flag_figure_and_threshold():
    settings = push_policy.PushSettings(min_neighbour_overlap=0.7)
    reason = push_policy.neighbour_overlap_refusal(_evaluation(0.4321), "blend", settings)
    assert "--min-neighbour-overlap 0.7" in reason and "0.432" in reason and "version 7" in reason
    assert push_policy.neighbour_overlap_refusal(_evaluation(0.7), "blend", settings) is None  # at the bar
    assert push_policy.neighbour_overlap_refusal(_evaluation(0.9), "blend", settings) is None


def test_an_impossible_threshold_refuses_even_identical_lists():
    settings = push_policy.PushSettings(min_neighbour_overlap=1.01)
    assert push_policy.neighbour_overlap_refusal(_evaluation(1.0), "blend", settings) is not None


@pytest.mark.parametrize(
    "evaluation",
    [
        _evaluation(None),  # nothing served yet: nothing to churn from
        {"best_source": "blend"},  # an evaluation from before stability existed
        None,  # no evaluation pushed
    ],
)
def test_nothing_to_compare_with_passes_the_gate(evaluation):
    settings = push_policy.PushSettings(min_neighbour_overlap=0.9)
    assert push_policy.neighbour_overlap_refusal(evaluation, "blend", settings) is None


def test_the_gate_reads_the_source_serving_would_answer_from():
    # The model was kept back, so serving would answer from co-occurrence, not the evaluation's blend.
    evaluation = _evaluation(0.95, per_source={"cooccurrence": 0.3})
    settings = push_policy.PushSettings(min_neighbour_overlap=0.5)
    assert "cooccurrence" in push_policy.neighbour_overlap_refusal(evaluation, "cooccurrence", settings)
    assert push_policy.neighbour_overlap_refusal(evaluation, "blend", settings) is None
    assert push_policy.neighbour_overlap_refusal(evaluation, "board", settings) is None  # not served before


@pytest.mark.parametrize("value", [-0.1, float("nan"), "0.5", True])
def test_a_bad_threshold_is_refused_naming_the_flag(value):
    with pytest.raises(ValueError, match="--min-neighbour-overlap"):
        push_policy.PushSettings(min_neighbour_overlap=value)


def test_a_switch_of_the_default_source_is_judged_on_what_the_default_model_answered():
    # Serving answers from pin2vec today; the model is kept back, so it would answer from co-occurrence,
    # whose own lists did not change (1.0) but share little with pin2vec's (0.2).
    evaluation = _evaluation(0.95, per_source={"cooccurrence": 1.0})
    evaluation["stability"]["from_served_default"] = {
        "cooccurrence": {"overlap_at_10": 0.2, "served_version": 7},
        "blend": {"overlap_at_10": 0.95, "served_version": 7},
    }
    settings = push_policy.PushSettings(min_neighbour_overlap=0.5)
    assert "0.200" in push_policy.neighbour_overlap_refusal(evaluation, "cooccurrence", settings)
    assert push_policy.neighbour_overlap_refusal(evaluation, "blend", settings) is None
