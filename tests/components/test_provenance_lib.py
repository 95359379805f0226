"""provenance_lib and the code fingerprints it names: what a report was computed from, with what and when."""

import re
import subprocess

from components import code_version
from components.related_evaluator import provenance_lib as lib

SETTINGS = {
    "source": {"path": "/data/events.csv", "user_col": "user_id", "actions": []},
    "trainer": {"epochs": 25, "learning_rate": 0.05},
    "blend": {"weights": [0.0, 0.5, 1.0]},
    "collections": None,
    "titles_path": "/data/titles.tsv",
}


def test_settings_are_flattened_to_one_cell_each():
    assert lib.flatten_settings(SETTINGS) == {
        "blend.weights": "0.0, 0.5, 1.0",
        "collections": None,
        "source.actions": "(none)",
        "source.path": "/data/events.csv",
        "source.user_col": "user_id",
        "titles_path": "/data/titles.tsv",
        "trainer.epochs": 25,
        "trainer.learning_rate": 0.05,
    }


def test_provenance_names_inputs_counts_settings_code_and_a_candidate_version():
    provenance = lib.build_provenance(
        settings=SETTINGS,
        counts={
            "pairs_train": 900,
            "events_read": 1000,
            "bad_rows": 0,
            "bad_row_unparsable": 0,
            "extra": 4,
            "vocabulary": None,
        },
        input_fingerprint="abc123",
        code={"git_commit": "f" * 40, "git_dirty": False, "evaluator_version": "e1"},
        written_at="2026-01-02T03:04:05Z",
    )
    assert provenance["inputs"] == [
        {"name": "engagement log", "path": "/data/events.csv", "fingerprint": "abc123"},
        {"name": "titles", "path": "/data/titles.tsv"},
    ]
    # Known counts in reading order (zeros kept: "0 bad rows" is news), unknown non-zero ones after, None out.
    assert list(provenance["counts"].items()) == [
        ("events_read", 1000),
        ("bad_rows", 0),
        ("pairs_train", 900),
        ("extra", 4),
    ]
    assert provenance["settings"]["trainer.epochs"] == 25
    assert provenance["version"] == {"pushed": None, "note": lib.CANDIDATE_VERSION}
    assert lib.version_description(provenance["version"]).startswith(
        "candidate: this report is written before"
    )
    assert lib.version_description({"pushed": 7}) == "pushed as version 7"
    assert lib.build_provenance(
        settings=None, counts={}, input_fingerprint="", code={}, written_at="t", pushed_version=3
    )["inputs"] == [{"name": "engagement log", "path": "not recorded", "fingerprint": "not recorded"}]


def test_code_is_described_by_commit_or_package_hash():
    assert lib.code_description(
        {"git_commit": "0123456789abcdef", "git_dirty": True, "evaluator_version": "e"}
    ) == ("git commit 0123456789ab with uncommitted changes; evaluator code e")
    assert lib.code_description({"package_version": "p1"}) == "package code version p1 (not a git checkout)"
    assert lib.code_description({}) == "not recorded"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lib.utc_now())


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_git_commit_of_a_checkout_and_none_outside_one(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.py").write_text("X = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    assert code_version.git_commit(repo) == (head.strip(), False)
    (repo / "pkg" / "a.py").write_text("X = 2\n")
    assert code_version.git_commit(repo) == (head.strip(), True)
    # A package folder inside a checkout is not the checkout: its commit would name other code.
    assert code_version.git_commit(repo / "pkg") is None
    assert code_version.git_commit(tmp_path / "nowhere") is None


def test_package_code_version_changes_with_any_module(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "m.py").write_text("X = 1\n")
    before = code_version.package_code_version(tmp_path, ("pkg",))
    assert before == code_version.package_code_version(tmp_path, ("pkg",))
    (tmp_path / "pkg" / "sub" / "m.py").write_text("X = 2\n")
    assert code_version.package_code_version(tmp_path, ("pkg",)) != before
