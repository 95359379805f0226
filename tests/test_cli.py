"""The `pin2vec` CLI: flags -> settings dataclasses, and `pin2vec related` against a real pushed index."""

import json
import os
import shutil
import string
import subprocess
import sys

import numpy as np
import pytest

from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from pipeline import cli
from pipeline.config import IN_PROCESS_BEAM_ARGS, MULTI_PROCESS_BEAM_ARGS, default_beam_args
from trainer_module.settings import TrainerSettings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ITEM_IDS = list(string.ascii_lowercase[:20])


def _parse(*argv):
    return cli.build_parser().parse_args(list(argv))


def test_run_parses_with_defaults():
    args = _parse("run", "--events", "x.tsv")
    assert args.command == "run"
    assert args.events == "x.tsv"
    assert args.sessions is None
    assert (args.window, args.session_gap, args.min_count) == (5, 1800, 5)
    assert args.epochs is None
    assert args.beam_arg is None
    assert args.no_cache is False


@pytest.mark.parametrize(
    "argv",
    [["run", "--events", "x.tsv", "--sessions", "y.txt"], ["run"], ["compile", "--kubeflow", "o.json"]],
)
def test_exactly_one_of_events_and_sessions(argv, capsys):
    with pytest.raises(SystemExit) as error:
        _parse(*argv)
    assert error.value.code == 2
    assert "--events" in capsys.readouterr().err


def test_settings_from_args_defaults():
    settings, run = cli.settings_from_args(_parse("run", "--events", "x.tsv", "--output-dir", "out"))
    assert settings.source.path == "x.tsv"
    assert settings.source.sessions is False
    assert settings.source.file_format == "auto"
    assert settings.sessions.window == 5
    assert settings.trainer == TrainerSettings()  # no trainer flag given: every default
    assert run.output_dir == os.path.abspath("out")
    assert run.beam_args is None  # chosen by input size when the run starts
    assert default_beam_args(10_000) == IN_PROCESS_BEAM_ARGS
    assert default_beam_args(1 << 30) == MULTI_PROCESS_BEAM_ARGS
    assert run.mysql is None
    assert run.enable_cache is True


def test_settings_from_args_maps_every_group(monkeypatch):
    monkeypatch.setenv("MY_SECRET_ENV", "s3cret")
    argv = ["run", "--sessions", "s.txt", "--window", "7", "--session-gap", "60", "--epochs", "2"]
    argv += [
        "--negatives",
        "8",
        "--learning-rate",
        "0.1",
        "--min-index-recall",
        "0.5",
        "--min-hit-rate",
        "0.2",
    ]
    # Beam options start with "--", so argparse needs them attached with "=".
    argv += ["--beam-arg=--runner=DirectRunner", "--beam-arg=--direct_num_workers=1", "--no-cache"]
    argv += ["--mysql-host", "db", "--mysql-user", "me", "--mysql-password-env", "MY_SECRET_ENV"]
    settings, run = cli.settings_from_args(_parse(*argv))

    assert settings.source.path == "s.txt"
    assert settings.source.sessions is True
    assert settings.source.file_format == "sessions"
    assert settings.sessions.window == 7
    assert settings.sessions.session_gap_seconds == 60
    assert settings.trainer.epochs == 2
    assert settings.trainer.num_negatives == 8
    assert settings.trainer.learning_rate == 0.1
    assert settings.trainer.batch_size == TrainerSettings().batch_size  # unset flags keep the default
    assert settings.index.min_recall == 0.5
    assert settings.evaluation.min_hit_rate_at_10 == 0.2
    assert run.beam_args == ("--runner=DirectRunner", "--direct_num_workers=1")
    assert run.enable_cache is False
    assert (run.mysql.host, run.mysql.user, run.mysql.password) == ("db", "me", "s3cret")


def test_related_without_a_pushed_index(tmp_path, capsys):
    assert cli.main(["related", "--output-dir", str(tmp_path), "1"]) == 1
    assert os.path.join(str(tmp_path), "serving", "pin2vec") in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--k", "0", "a"], ["--k", str(cli.MAX_K + 1), "a"], []])
def test_related_rejects_bad_arguments(tmp_path, capsys, argv):
    assert cli.main(["related", "--output-dir", str(tmp_path), *argv]) == 2
    assert "pin2vec related:" in capsys.readouterr().err


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    """`<output_dir>/serving/pin2vec_similar/5/`: a real index over seeded random embeddings of items a..t."""
    output_dir = tmp_path_factory.mktemp("run")
    embeddings = np.random.default_rng(7).normal(size=(len(ITEM_IDS), 8)).astype(np.float32)
    settings = IndexSettings()
    searcher = index_lib.build_index(embeddings, settings)
    directory = output_dir / "serving" / "pin2vec_similar" / "5"
    index_lib.save_index(searcher, ITEM_IDS, embeddings, str(directory), settings, recall=1.0)
    return output_dir


def test_related_json(output_dir, capsys):
    assert cli.main(["related", "--output-dir", str(output_dir), "--json", "--k", "4", "a", "zzz"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert list(answer) == ["a", "zzz"]
    assert answer["zzz"] is None
    related = answer["a"]
    assert len(related) == 4
    assert all(set(r) == {"item", "score", "source"} for r in related)
    assert {r["source"] for r in related} == {"pin2vec_similar"}
    items = [r["item"] for r in related]
    assert "a" not in items
    assert set(items) <= set(ITEM_IDS)
    scores = [r["score"] for r in related]
    assert scores == sorted(scores, reverse=True)


def test_related_json_defaults_to_ten_items(output_dir, capsys):
    assert cli.main(["related", "--output-dir", str(output_dir), "--json", "b"]) == 0
    assert len(json.loads(capsys.readouterr().out)["b"]) == 10


def test_related_text_shows_titles(output_dir, tmp_path, capsys):
    titles = tmp_path / "titles.tsv"
    titles.write_text(
        "item_id\ttitle\n" + "".join(f"{i}\tTitle of {i.upper()}\n" for i in ITEM_IDS), encoding="utf-8"
    )
    argv = ["related", "--output-dir", str(output_dir), "--titles", str(titles), "--k", "3", "c", "zzz"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert os.path.join(str(output_dir), "serving", "pin2vec_similar", "5") in out
    assert "Related to c Title of C (from pin2vec_similar):" in out
    assert out.count("Title of ") == 4  # the query and its 3 related items
    assert "zzz: unknown item" in out


def test_related_k_above_the_index_size_is_an_error(output_dir, capsys):
    assert cli.main(["related", "--output-dir", str(output_dir), "--k", "50", "a"]) == 1
    assert "k must be an integer in [1, 19]" in capsys.readouterr().err


@pytest.fixture(scope="module")
def output_with_tables(output_dir):
    """Adds pushed co-occurrence and blend tables, and an evaluation that found co-occurrence best."""
    from formats import candidate_table

    serving = output_dir / "serving"
    for source, first in (("cooccurrence", "b"), ("blend", "c")):
        table = candidate_table.from_lists({"a": [(first, 2.0), ("d", 1.0)]}, {"a": 3}, top_n=5)
        candidate_table.save_table(table, str(serving / source / "5"))
    (serving / "evaluation" / "5").mkdir(parents=True)
    evaluation = {
        "ks": [10],
        "sources": ["cooccurrence", "blend"],
        "best_source": "cooccurrence",
        "splits": {},
    }
    (serving / "evaluation" / "5" / "evaluation.json").write_text(json.dumps(evaluation))
    return output_dir


@pytest.mark.parametrize(
    ("argv", "first"), [([], "b"), (["--source", "cooccurrence"], "b"), (["--source", "blend"], "c")]
)
def test_related_sources_keep_the_json_shape(output_with_tables, capsys, argv, first):
    assert cli.main(["related", "--output-dir", str(output_with_tables), "--json", *argv, "a", "zzz"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["zzz"] is None
    source = argv[1] if argv else "cooccurrence"
    assert answer["a"] == [
        {"item": first, "score": 2.0, "source": source},
        {"item": "d", "score": 1.0, "source": source},
    ]


def test_related_falls_back_to_the_coldstart_table_and_says_so(output_with_tables, tmp_path, capsys):
    """Default source cooccurrence; `rare` (under min_count) only the coldstart table knows; `lonely` was
    engaged with nothing, so it gets the window's most engaged items, named as the fallback."""
    from formats import candidate_table

    serving = tmp_path / "serving"
    shutil.copytree(output_with_tables / "serving", serving)
    engaged = {"a": 3, "b": 9, "rare": 1, "lonely": 1}
    cold = candidate_table.from_lists({"rare": [("a", 1.0)]}, engaged, top_n=5)
    candidate_table.save_table(cold, str(serving / "coldstart" / "5"))
    argv = ["related", "--serving-dir", str(serving), "--json", "--k", "2", "a", "rare", "lonely", "zzz"]
    assert cli.main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [r["source"] for r in answer["a"]] == ["cooccurrence", "cooccurrence"]
    assert answer["rare"] == [{"item": "a", "score": 1.0, "source": "coldstart"}]
    assert answer["lonely"] == [
        {"item": "b", "score": 9.0, "source": "popular"},
        {"item": "a", "score": 3.0, "source": "popular"},
    ]
    assert answer["zzz"] is None
    assert cli.main(["related", "--serving-dir", str(serving), "lonely", "zzz"]) == 0
    out = capsys.readouterr().out
    assert "Related to lonely (from popular (a fallback: the window's most engaged items)):" in out
    assert "zzz: unknown item (not engaged in the window)" in out


def test_related_pin2vec_similar_source_is_the_cosine_index(output_with_tables, capsys):
    argv = [
        "related",
        "--output-dir",
        str(output_with_tables),
        "--json",
        "--source",
        "pin2vec_similar",
        "--k",
        "3",
        "a",
    ]
    assert cli.main(argv) == 0
    assert len(json.loads(capsys.readouterr().out)["a"]) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--events", "no/such/events.csv"], "no input files at 'no/such/events.csv'"),
        (["--events", "{empty}"], "no input files"),
        (["--events", "{log}", "--window", "0"], "window"),
        (["--events", "{log}", "--epochs", "-1"], "epochs"),
        (["--events", "{log}", "--item-col", "pin"], "has no column(s) ['pin']"),
        (["--events", "{log}", "--collections", "no/boards.csv"], "--collections no/boards.csv"),
    ],
)
def test_run_reports_input_mistakes_before_loading_tensorflow(tmp_path, argv, message):
    """Each mistake is reported by a fresh `pin2vec run` process that never imports TensorFlow (tens of
    seconds): the median over these cases is what a user waits (docs/BENCHMARKS.md, "CLI input errors")."""
    (tmp_path / "empty").mkdir()
    log = tmp_path / "events.csv"
    log.write_text("user_id,item_id,timestamp\nu,i,1\nu,j,2\n")
    argv = [a.format(empty=tmp_path / "empty", log=log) for a in argv]
    probe = (
        "import sys; from pipeline import cli; code = cli.main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; sys.exit(code)"
    )
    command = [sys.executable, "-c", probe, "run", *argv, "--output-dir", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1, done.stderr[-2000:]
    assert message in done.stderr
    assert not (tmp_path / "out").exists()  # nothing started
