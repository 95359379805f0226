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
