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
