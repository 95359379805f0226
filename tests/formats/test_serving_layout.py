"""serving_layout: version numbers above everything pushed, atomic copies that never overwrite."""

import os
import shutil
import time

import pytest

from formats import serving_layout


def _versions(base, *names):
    for name in names:
        (base / name).mkdir(parents=True)
    return str(base)


def test_next_version_is_now_when_nothing_newer_was_pushed(tmp_path):
    base = _versions(tmp_path / "embedding", "5", "10")
    assert serving_layout.next_version([base], now=1000.7) == 1000


def test_next_version_is_above_the_latest_version_of_every_base(tmp_path):
    embedding = _versions(tmp_path / "embedding", "5", "10")
    related = _versions(tmp_path / "related", "7", "2000")
    assert serving_layout.next_version([embedding, related], now=3) == 2001


def test_next_version_defaults_to_the_current_time(tmp_path):
    base = _versions(tmp_path / "embedding", "1")
    before = int(time.time())
    version = serving_layout.next_version([base])
    assert before <= version <= int(time.time())


def test_next_version_of_missing_bases_is_now(tmp_path):
    assert serving_layout.next_version([str(tmp_path / "absent")], now=42) == 42


def test_next_version_ignores_temporary_and_non_integer_names(tmp_path):
    base = _versions(tmp_path / "related", "3", ".9999.tmp-0123abcd", "latest", "12a", "-50", "1e9", "²", "٣")
    assert serving_layout.existing_versions(base) == [3]
    assert serving_layout.next_version([base], now=1) == 4


def _source(tmp_path):
    source = tmp_path / "source"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"\x00model")
    (source / "variables" / "variables.index").write_text("index", encoding="utf-8")
    return source


def _tree(directory):
    return {
        os.path.relpath(os.path.join(root, name), directory): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(directory)
        for name in names
    }


def test_publish_directory_copies_everything_and_leaves_no_staging_dir(tmp_path):
    source = _source(tmp_path)
    base = tmp_path / "serving" / "embedding"

    final = serving_layout.publish_directory(str(source), str(base), 17)

    assert final == str(base / "17")
    assert (
        _tree(final)
        == _tree(source)
        == {
            "saved_model.pb": b"\x00model",
            os.path.join("variables", "variables.index"): b"index",
        }
    )
    assert os.listdir(base) == ["17"]


def test_publish_directory_never_overwrites_a_version(tmp_path):
    source = _source(tmp_path)
    base = tmp_path / "embedding"
    (base / "17").mkdir(parents=True)
    (base / "17" / "old.txt").write_text("old", encoding="utf-8")

    with pytest.raises(FileExistsError, match="Version 17 already exists"):
        serving_layout.publish_directory(str(source), str(base), 17)

    assert _tree(base / "17") == {"old.txt": b"old"}
    assert os.listdir(base) == ["17"]


def test_publish_directory_leaves_nothing_when_the_copy_fails(tmp_path):
    source = _source(tmp_path)
    # copytree(symlinks=False) follows links; a dangling one makes it raise after copying the rest.
    os.symlink(tmp_path / "gone", source / "dangling")
    base = tmp_path / "embedding"

    with pytest.raises(shutil.Error, match="dangling"):
        serving_layout.publish_directory(str(source), str(base), 17)

    assert os.listdir(base) == []


def test_publish_directory_needs_a_source_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing to push"):
        serving_layout.publish_directory(str(tmp_path / "absent"), str(tmp_path / "embedding"), 1)
    assert not (tmp_path / "embedding").exists()
