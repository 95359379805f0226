"""What `pin2vec gc` may delete: the newest runs' artifacts (cached ones and the baseline included), the
served and pinned serving versions always stay."""

import pytest

from pipeline.gc_plan import ArtifactRecord, RunRecord, artifacts_to_delete, kept_runs, versions_to_delete

ROOT = "/out/pipeline"


def _artifacts(*specs):
    return {i: ArtifactRecord(i, uri, "Node", deleted) for i, uri, deleted in specs}


def test_only_artifacts_no_kept_run_touches_go():
    runs = [
        RunRecord("run-1", 100, frozenset({1, 2, 3})),  # examples 1, model 2, baseline-free push 3
        RunRecord("run-2", 200, frozenset({1, 4, 5})),  # examples 1 reused from cache, new model 4, push 5
        RunRecord("run-3", 300, frozenset({1, 4, 6})),  # cached examples and model, Evaluator read model 4
    ]
    artifacts = _artifacts(*((i, f"{ROOT}/N/{i}", False) for i in range(1, 7)))
    assert [a.id for a in artifacts_to_delete(runs, artifacts, 1, ROOT)] == [2, 3, 5]
    assert [a.id for a in artifacts_to_delete(runs, artifacts, 2, ROOT)] == [2, 3]
    assert artifacts_to_delete(runs, artifacts, 3, ROOT) == []
    assert artifacts_to_delete(runs, artifacts, 10, ROOT) == []


def test_cached_outputs_and_the_baseline_of_the_newest_run_stay():
    # The newest run reused examples 1 (cache) and compared against the blessed model 2 of the oldest run.
    runs = [RunRecord("old", 1, frozenset({1, 2})), RunRecord("mid", 2, frozenset({1, 3})),
            RunRecord("new", 3, frozenset({1, 2, 4}))]  # fmt: skip
    artifacts = _artifacts(*((i, f"{ROOT}/N/{i}", False) for i in range(1, 5)))
    assert [a.id for a in artifacts_to_delete(runs, artifacts, 1, ROOT)] == [3]


def test_newest_runs_are_chosen_by_creation_time_not_order_or_name():
    runs = [
        RunRecord("b", 300, frozenset()),
        RunRecord("c", 100, frozenset()),
        RunRecord("a", 200, frozenset()),
    ]
    assert [r.name for r in kept_runs(runs, 2)] == ["b", "a"]


def test_never_outside_the_pipeline_root_nor_twice():
    runs = [RunRecord("old", 1, frozenset({1, 2, 3})), RunRecord("new", 2, frozenset())]
    artifacts = _artifacts(
        (1, "/data/logs/events.csv", False),  # outside the root: the user's files
        (2, f"{ROOT}/N/2", True),  # already deleted
        (3, f"{ROOT}-other/N/3", False),  # a sibling directory sharing the prefix
    )
    assert artifacts_to_delete(runs, artifacts, 1, ROOT) == []


def test_serving_keeps_the_newest_and_the_pinned_version():
    assert versions_to_delete([1, 2, 3, 4, 5], None, 2) == [1, 2, 3]
    assert versions_to_delete([1, 2, 3, 4, 5], 2, 2) == [1, 3]  # rolled back to 2: it stays
    assert versions_to_delete([5, 1, 3], None, 1) == [1, 3]
    assert versions_to_delete([1, 2], None, 5) == []
    assert versions_to_delete([], None, 1) == []


@pytest.mark.parametrize("keep", [0, -1, True, 1.5])
def test_keep_must_be_a_positive_integer(keep):
    with pytest.raises(ValueError, match="--keep must be an integer >= 1"):
        versions_to_delete([1], None, keep)
    with pytest.raises(ValueError, match="--keep"):
        artifacts_to_delete([], {}, keep, ROOT)
