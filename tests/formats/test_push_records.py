"""Version-atomic pushes: a version is visible whole or not at all, damage is caught, a killed push is
finished or replaced, and a serving directory from before commit records keeps its versions."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from formats import push_records, serving_layout
from formats.index_searcher import latest_version_dir

MODELS = ("cooccurrence", "evaluation", "embedding")


def _sources(tmp_path, tag="a"):
    """One directory per model, each with a marker file and a nested file."""
    sources = {}
    for name in MODELS:
        directory = tmp_path / "artifacts" / tag / name
        (directory / "sub").mkdir(parents=True, exist_ok=True)
        (directory / "meta.json").write_text(json.dumps({"model": name, "tag": tag}), encoding="utf-8")
        (directory / "sub" / "data.bin").write_bytes(bytes(range(256)) * 4)
        sources[name] = str(directory)
    return sources


def _push(serving, sources, tag="a"):
    return serving_layout.publish_version(
        str(serving),
        sources,
        {name: uri for name, uri in sources.items()} | {"tag": tag},
        {"evaluation": {serving_layout.SERVED_SOURCES_FILE: {"default_source": "cooccurrence"}}},
    )


def test_a_push_is_committed_with_a_manifest_per_model(tmp_path):
    serving = tmp_path / "serving"
    result = _push(serving, _sources(tmp_path))
    assert not result.already_serving
    record = push_records.committed(str(serving))[result.version]
    assert sorted(record["models"]) == sorted(MODELS)
    for name in MODELS:
        directory = serving / name / str(result.version)
        push_records.check_model_version(str(directory))  # raises when anything differs
        manifest = json.loads((directory / push_records.MANIFEST_FILE).read_text())
        assert set(manifest["files"]) >= {"meta.json", os.path.join("sub", "data.bin")}
    assert json.loads((serving / "evaluation" / str(result.version) / "served_sources.json").read_text())


@pytest.mark.parametrize(
    "damage",
    ["truncate", "garble_same_size", "remove", "add_file", "replace_manifest"],
)
def test_a_damaged_model_version_is_refused_and_readers_keep_the_newest_good_one(tmp_path, damage):
    serving = tmp_path / "serving"
    good = _push(serving, _sources(tmp_path, "a"), "a").version
    bad = _push(serving, _sources(tmp_path, "b"), "b").version
    directory = serving / "cooccurrence" / str(bad)
    data = directory / "sub" / "data.bin"
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[:100])
    elif damage == "garble_same_size":
        data.write_bytes(bytes(reversed(data.read_bytes())))
    elif damage == "remove":
        data.unlink()
    elif damage == "add_file":
        (directory / "extra.txt").write_text("x")
    else:  # a manifest rewritten to match damaged files: the commit record names the original one
        data.write_bytes(b"other")
        push_records.write_manifest(str(directory))
    with pytest.raises(push_records.CorruptVersionError):
        push_records.check_model_version(str(directory))
    assert latest_version_dir(str(serving / "cooccurrence"), "meta.json") == str(
        serving / "cooccurrence" / str(good)
    )
    # The same artifacts pushed again: not "already serving" (a model is damaged), so a new version.
    again = _push(serving, _sources(tmp_path, "b"), "b")
    assert not again.already_serving and again.version > bad


def test_a_push_killed_after_its_commit_is_finished_by_the_rerun(tmp_path):
    serving = tmp_path / "serving"
    sources = _sources(tmp_path)
    first = _push(serving, sources)
    shutil.rmtree(serving / "embedding" / str(first.version))  # killed before embedding was renamed
    again = _push(serving, sources)
    assert again.already_serving and again.version == first.version and again.completed == ("embedding",)
    push_records.check_model_version(str(serving / "embedding" / str(first.version)))
    assert _push(serving, sources).completed == ()


def test_a_push_killed_before_its_commit_is_never_visible_and_is_cleaned_up(tmp_path):
    serving = tmp_path / "serving"
    first = _push(serving, _sources(tmp_path, "a"), "a").version
    orphan = serving / "cooccurrence" / str(first + 10)  # renamed into place, then killed before the commit
    shutil.copytree(serving / "cooccurrence" / str(first), orphan)
    assert latest_version_dir(str(serving / "cooccurrence"), "meta.json") == str(
        serving / "cooccurrence" / str(first)
    )
    with pytest.raises(push_records.CorruptVersionError, match="not committed"):
        push_records.check_model_version(str(orphan))
    second = _push(serving, _sources(tmp_path, "b"), "b").version
    assert not orphan.exists() and second > first


def test_versions_pushed_before_commit_records_stay_visible(tmp_path):
    serving = tmp_path / "serving"
    sources = _sources(tmp_path)
    serving_layout.publish_directory(sources["cooccurrence"], str(serving / "cooccurrence"), 3)
    assert not push_records.records_in_use(str(serving))
    push_records.check_model_version(str(serving / "cooccurrence" / "3"))  # legacy layout: no checks
    version = _push(serving, sources).version
    records = push_records.committed(str(serving))
    assert records[3] == {"legacy": True, "models": {"cooccurrence": None}}
    assert version in records
    push_records.check_model_version(str(serving / "cooccurrence" / "3"))  # still visible after records


@pytest.mark.parametrize("kill_at", ["after-rename-cooccurrence", "after-rename-evaluation", "after-commit"])
def test_a_push_killed_at_each_step_is_never_seen_partly_and_the_rerun_completes(tmp_path, kill_at):
    """A real process killed (os._exit, as kill -9) at each point of the push, then the rerun."""
    serving = tmp_path / "serving"
    first = _push(serving, _sources(tmp_path, "a"), "a").version
    sources = _sources(tmp_path, "b")
    script = (
        "import json, sys; from formats import serving_layout; "
        "s = json.loads(sys.argv[2]); "
        "serving_layout.publish_version(sys.argv[1], s, {**s, 'tag': 'b'}, "
        "{'evaluation': {'served_sources.json': {'default_source': 'cooccurrence'}}})"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    killed = subprocess.run(
        [sys.executable, "-c", script, str(serving), json.dumps(sources)],
        cwd=repo,
        env={**os.environ, "PIN2VEC_KILL_AT": kill_at},
        check=False,
    )
    assert killed.returncode == 137
    newest = {name: latest_version_dir(str(serving / name), "meta.json") for name in MODELS}
    if kill_at == "after-commit":  # committed: visible, all but the embedding renamed after the commit
        assert newest["cooccurrence"] != newest["embedding"] == str(serving / "embedding" / str(first))
    else:  # not committed: every reader still sees the first version only
        assert newest == {name: str(serving / name / str(first)) for name in MODELS}
    rerun = _push(serving, sources, "b")
    newest = {name: latest_version_dir(str(serving / name), "meta.json") for name in MODELS}
    assert newest == {name: str(serving / name / str(rerun.version)) for name in MODELS}
    assert rerun.version > first and rerun.already_serving == (kill_at == "after-commit")


def test_committed_versions_come_oldest_first_whatever_the_directory_order(tmp_path):
    serving = str(tmp_path / "serving")
    for version in (10, 2, 1, 33):
        push_records.write_commit(serving, version, {"models": {}})
    assert list(push_records.committed(serving)) == [1, 2, 10, 33]
