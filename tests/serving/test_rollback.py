"""`pin2vec rollback`: pins serving to an earlier committed version, deleting nothing; readers follow."""

import json

import pytest

from formats import push_records, serving_layout
from formats.index_searcher import latest_version_dir
from pipeline import cli
from serving.rollback import rollback


def _push_three(tmp_path):
    """Three committed versions of a cooccurrence-like model and an evaluation naming it the default."""
    serving = tmp_path / "serving"
    versions = []
    for tag in ("a", "b", "c"):
        table = tmp_path / tag / "cooccurrence"
        table.mkdir(parents=True)
        (table / "meta.json").write_text(json.dumps({"tag": tag}))
        evaluation = tmp_path / tag / "evaluation"
        evaluation.mkdir()
        (evaluation / "evaluation.json").write_text("{}")
        result = serving_layout.publish_version(
            str(serving),
            {"cooccurrence": str(table), "evaluation": str(evaluation)},
            {"tag": tag},
            {"evaluation": {serving_layout.SERVED_SOURCES_FILE: {"default_source": "cooccurrence"}}},
        )
        versions.append(result.version)
    return serving, versions


def _served(serving):
    return latest_version_dir(str(serving / "cooccurrence"), "meta.json")


def test_previous_walks_back_and_release_serves_the_newest_again(tmp_path):
    serving, (v1, v2, v3) = _push_three(tmp_path)
    assert _served(serving).endswith(str(v3))
    assert f"version {v2} (was {v3})" in rollback(str(serving), previous=True)
    assert _served(serving).endswith(str(v2))
    rollback(str(serving), previous=True)
    assert _served(serving).endswith(str(v1)) and push_records.pinned_version(str(serving)) == v1
    with pytest.raises(ValueError, match="oldest pushed version"):
        rollback(str(serving), previous=True)
    assert f"newest pushed version again: {v3}" in rollback(str(serving), release=True)
    assert _served(serving).endswith(str(v3))
    assert (serving / "cooccurrence" / str(v3)).is_dir()  # nothing was deleted
    history = (serving / "versions" / push_records.HISTORY_FILE).read_text().splitlines()
    assert [json.loads(line)["action"] for line in history] == ["rollback", "rollback", "release"]


def test_a_push_while_pinned_waits_for_the_release(tmp_path):
    serving, (v1, _, v3) = _push_three(tmp_path)
    rollback(str(serving), to=v1)
    table = tmp_path / "d"
    table.mkdir()
    (table / "meta.json").write_text("{}")
    newer = serving_layout.publish_version(str(serving), {"cooccurrence": str(table)}, {"tag": "d"}).version
    assert newer > v3 and _served(serving).endswith(str(v1))
    rollback(str(serving), release=True)
    assert _served(serving).endswith(str(newer))


def test_bad_targets_are_refused_with_what_to_do(tmp_path, capsys):
    serving, (v1, _, _) = _push_three(tmp_path)
    with pytest.raises(ValueError, match="never committed"):
        rollback(str(serving), to=12345)
    (serving / "cooccurrence" / str(v1) / "meta.json").write_text("damaged")
    with pytest.raises(ValueError, match=f"version {v1} cannot serve"):
        rollback(str(serving), to=v1)
    assert push_records.pinned_version(str(serving)) is None  # a refused rollback pins nothing
    assert cli.main(["rollback", "--serving-dir", str(tmp_path / "absent"), "--previous"]) == 1
    assert "not a serving directory" in capsys.readouterr().err
