"""The `pin2vec` CLI: flags -> settings dataclasses, and `pin2vec related` against a real pushed index."""

import argparse
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
    assert settings.trainer.max_pair_updates == 0  # no cap unless asked for
    assert settings.trainer.num_negatives == 8
    assert settings.trainer.learning_rate == 0.1
    assert settings.trainer.batch_size == TrainerSettings().batch_size  # unset flags keep the default
    assert settings.index.min_recall == 0.5
    assert settings.evaluation.min_hit_rate_at_10 == 0.2
    assert run.beam_args == ("--runner=DirectRunner", "--direct_num_workers=1")
    assert run.enable_cache is False
    assert (run.mysql.host, run.mysql.user, run.mysql.password) == ("db", "me", "s3cret")


def test_epochs_with_a_cap_keeps_both():
    settings, _ = cli.settings_from_args(
        _parse("run", "--events", "e.csv", "--epochs", "30", "--max-pair-updates", "1000")
    )
    assert (settings.trainer.epochs, settings.trainer.max_pair_updates) == (30, 1000)


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
        (["--events", "{log}", "--days", "7"], "--days 7 needs --events with a span pattern"),
        (
            ["--events", "no/logs/{{YYYY}}-{{MM}}-{{DD}}/*.parquet", "--days", "7"],
            "--events/--sessions no/logs/{YYYY}-{MM}-{DD}/*.parquet: no file matches the span pattern",
        ),
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


# ---------------------------------------------------------------------------------------------------------
# What a user reads: --help defaults, --version, errors that name flags, empty inputs, the k cap.


def _subparsers():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return parser, sub.choices


def _flags(parser):
    return [a for a in parser._actions if a.option_strings and a.dest not in ("help", "version")]


def test_every_flag_of_every_command_has_help_that_says_its_default():
    _, commands = _subparsers()
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in _flags(parser):
            text = formatter._get_help_string(action)
            where = f"pin2vec {name} {action.option_strings[0]}"
            assert action.help, f"{where} has no help"
            if action.default in (None, False) or action.required:
                continue  # a None default is said in words where it matters, a switch is off
            shown = text % {"default": action.default}
            assert f"default: {action.default}" in shown or "default:" in text, f"{where}: {shown!r}"


def test_run_help_shows_defaults_and_settings_defaults(monkeypatch):
    from pipeline.config import EvaluationSettings

    monkeypatch.setenv("COLUMNS", "300")  # one line per flag
    parser = _subparsers()[1]["run"]
    text = parser.format_help()
    assert "(default: 1800)" in text  # --session-gap
    assert "(default: work/runs/default)" in text
    helps = {a.option_strings[0]: a.help for a in _flags(parser)}
    defaults = {
        "--epochs": TrainerSettings().epochs,
        "--warm-epochs": TrainerSettings().warm_epochs,
        "--max-pair-updates": TrainerSettings().max_pair_updates,
        "--batch-size": TrainerSettings().batch_size,
        "--negatives": TrainerSettings().num_negatives,
        "--learning-rate": TrainerSettings().learning_rate,
        "--embedding-dim": TrainerSettings().embedding_dim,
        "--min-index-recall": IndexSettings().min_recall,
        "--min-hit-rate": EvaluationSettings().min_hit_rate_at_10,
        "--max-hit-rate-drop": EvaluationSettings().max_hit_rate_drop,
    }
    for (
        flag,
        default,
    ) in defaults.items():  # written out in cli_parsers.py so --help needs no numpy: kept equal here
        assert f"(default: {default}" in helps[flag], flag


def test_version_names_the_package_version_and_commit(capsys):
    from pipeline.version import git_commit, package_version

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"pin2vec {package_version()}")
    assert package_version() != "unknown"
    commit = git_commit()
    if commit is not None:  # a git checkout (CI's is one)
        assert f"(commit {commit})" in out


def _leaves(settings, run) -> dict[tuple[str, str], object]:
    """{(role, field): value} of every settings field a flag could reach."""
    roles = {
        "EventSource": settings.source,
        "collections": settings.collections,
        "SessionSettings": settings.sessions,
        "TrainerSettings": settings.trainer,
        "IndexSettings": settings.index,
        "EvaluationSettings": settings.evaluation,
        "PushSettings": settings.push,
        "RunSettings": run,
        "MySQLSettings": run.mysql,
    }
    import dataclasses

    return {
        (role, f.name): getattr(value, f.name)
        for role, value in roles.items()
        for f in dataclasses.fields(value)
        if not dataclasses.is_dataclass(getattr(value, f.name))
    }


def _changed_value(action):
    if action.choices:
        return next(c for c in action.choices if c != action.default)
    if action.type is int:
        return str((action.default or 0) + 11)  # no setting defaults to 11
    if action.type is float:
        return "0.25" if action.default != 0.25 else "0.5"
    return "other_value"


def test_every_settings_field_a_flag_reaches_is_in_the_flag_table(monkeypatch):
    """Each run flag is changed alone; every settings field that changes must be named in FLAGS_OF_FIELDS by
    that flag, so an error about the field can name it."""
    from pipeline.flag_names import ALSO_SET_BY, FLAGS_OF_FIELDS

    monkeypatch.setenv("OTHER_PASSWORD_ENV", "other")
    base = {"--events": "x.csv", "--collections": "b.csv", "--mysql-host": "db"}
    as_argv = lambda options: ["run", *[part for pair in options.items() for part in pair]]  # noqa: E731
    before = _leaves(*cli.settings_from_args(_parse(*as_argv(base))))
    parser = _subparsers()[1]["run"]
    reached = set()
    for action in _flags(parser):
        flag = action.option_strings[0]
        options = dict(base)
        if flag == "--sessions":
            options["--sessions"] = options.pop("--events")
        elif flag in base:
            options[flag] = "other_value"
        elif action.dest == "mysql_password_env":
            options[flag] = "OTHER_PASSWORD_ENV"
        elif action.nargs != 0 and action.dest != "beam_arg":
            options[flag] = _changed_value(action)
        argv = as_argv(options)
        if action.nargs == 0:
            argv.append(flag)
        elif action.dest == "beam_arg":
            argv.append("--beam-arg=--runner=Other")
        after = _leaves(*cli.settings_from_args(_parse(*argv)))
        for key in after:
            if after[key] != before.get(key):
                reached.add(key)
                named = FLAGS_OF_FIELDS.get(key[0], {}).get(key[1], "").split("/")
                assert flag in named or ALSO_SET_BY.get(key) == flag, f"{flag} sets {key}: not in the table"
    mapped = {(role, field) for role, fields in FLAGS_OF_FIELDS.items() for field in fields}
    assert mapped <= reached, f"table entries no flag reaches: {sorted(mapped - reached)}"


@pytest.mark.parametrize(
    ("argv", "flag", "field"),
    [
        (["--epochs", "0"], "--epochs", "TrainerSettings"),
        (["--warm-epochs", "0"], "--warm-epochs", "warm_epochs"),
        (["--max-pair-updates", "-1"], "--max-pair-updates", "max_pair_updates"),
        (["--batch-size", "0"], "--batch-size", "batch_size"),
        (["--negatives", "0"], "--negatives", "num_negatives"),
        (["--learning-rate", "0"], "--learning-rate", "learning_rate"),
        (["--embedding-dim", "0"], "--embedding-dim", "embedding_dim"),
        (["--max-bad-share", "2"], "--max-bad-share", "max_bad_share"),
        (["--eval-user-share", "2"], "--eval-user-share", "eval_user_share"),
        (["--session-gap", "0"], "--session-gap", "session_gap_seconds"),
        (["--window", "1"], "--window=1", "SessionSettings"),
        (["--min-count", "0"], "--min-count", "min_count"),
        (["--min-index-recall", "-1"], "--min-index-recall", "min_recall"),
        (["--min-hit-rate", "2"], "--min-hit-rate", "min_hit_rate_at_10"),
        (["--max-hit-rate-drop", "-0.1"], "--max-hit-rate-drop", "max_hit_rate_drop"),
        (["--user-col", ""], "--user-col", "user_col"),
    ],
)
def test_settings_errors_name_the_flag_not_the_field(argv, flag, field, capsys):
    assert cli.main(["run", "--events", "x.csv", *argv]) == 1
    err = capsys.readouterr().err
    assert flag in err
    assert field not in err


def test_missing_columns_name_the_collection_flags(tmp_path, capsys):
    log = tmp_path / "events.csv"
    log.write_text("user_id,item_id,timestamp\nu,i,1\n")
    boards = tmp_path / "boards.csv"
    boards.write_text("owner,item_id\nb,i\n")
    argv = ["run", "--events", str(log), "--collections", str(boards), "--output-dir", str(tmp_path / "o")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "--collections" in err and "has no column(s) ['board']" in err
    assert "--collection-col/--collection-item-col" in err
    assert "user_col" not in err


def _empty_input(directory, kind):
    """An input path of one empty kind, under `directory`."""
    if kind == "empty file":
        (directory / "empty.csv").write_text("")
        return directory / "empty.csv"
    if kind in ("empty directory", "hidden files only"):
        (directory / "logs").mkdir()
        if kind == "hidden files only":
            (directory / "logs" / ".part-0.csv").write_text("user_id,item_id,timestamp\nu,i,1\n")
        return directory / "logs"
    if kind == "header only":
        (directory / "h.csv").write_text("user_id,item_id,timestamp\n")
        return directory / "h.csv"
    return directory / {"glob": "*.parquet", "missing": "missing.csv"}[kind]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty file", "is empty: no header line"),
        ("empty directory", "the directory is empty"),
        ("hidden files only", "the directory holds no data file"),
        ("glob", "the glob matches no data file"),
        ("missing", "no such file or directory"),
        ("header only", "not one row under the header"),
    ],
)
def test_empty_inputs_say_what_is_empty(tmp_path, capsys, kind, message):
    path = _empty_input(tmp_path, kind)
    assert cli.main(["run", "--events", str(path), "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert f"--events/--sessions {path}" in err
    assert not (tmp_path / "out").exists()


def test_related_empty_ids_file_says_it_is_empty(tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n  \n")
    assert cli.main(["related", "--output-dir", str(tmp_path), "--ids-file", str(ids)]) == 2
    err = capsys.readouterr().err
    assert f"--ids-file {ids} holds no item id" in err
    assert cli.main(["related", "--output-dir", str(tmp_path), "--ids-file", str(tmp_path / "no.txt")]) == 2
    assert "cannot read it" in capsys.readouterr().err


@pytest.mark.parametrize("k", [str(2**63), str(2**64 + 1), "-" + str(2**63 + 1)])
def test_related_k_beyond_64_bits_is_refused_clearly(tmp_path, capsys, k):
    assert cli.main(["related", "--output-dir", str(tmp_path), "--k", k, "a"]) == 2
    assert f"--k must be between 1 and {cli.MAX_K}, got {k}" in capsys.readouterr().err


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_related_k_above_a_tables_cap_is_said(output_with_tables, capsys, json_flag):
    argv = ["related", "--output-dir", str(output_with_tables), "--source", "cooccurrence", "--k", "7"]
    assert cli.main([*argv, *json_flag, "a"]) == 0
    captured = capsys.readouterr()
    assert "--k 7 asks more than the cooccurrence source holds" in captured.err
    assert "best 5 candidates per item" in captured.err
    if json_flag:
        assert json.loads(captured.out)["a"][0]["item"] == "b"  # stdout stays plain JSON


def test_related_k_within_a_tables_cap_says_nothing(output_with_tables, capsys):
    argv = ["related", "--output-dir", str(output_with_tables), "--source", "blend", "--k", "5", "a"]
    assert cli.main(argv) == 0
    assert "warning" not in capsys.readouterr().err


def test_min_neighbour_overlap_is_off_by_default_and_reaches_the_push_settings():
    settings, _ = cli.settings_from_args(_parse("run", "--events", "x.tsv"))
    assert settings.push.min_neighbour_overlap is None
    settings, _ = cli.settings_from_args(_parse("run", "--events", "x.tsv", "--min-neighbour-overlap", "0.7"))
    assert settings.push.min_neighbour_overlap == 0.7


def test_a_negative_min_neighbour_overlap_is_an_error_naming_the_flag(tmp_path, capsys):
    argv = [
        "run",
        "--events",
        "x.tsv",
        "--output-dir",
        str(tmp_path / "out"),
        "--min-neighbour-overlap",
        "-1",
    ]
    assert cli.main(argv) == 1
    assert "--min-neighbour-overlap must be a number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_setting_that_would_not_decode_in_its_step_is_refused_naming_its_flag():
    """Each step decodes its settings from JSON (formats/settings_codec.py); the CLI checks that round trip
    first, so a wrong type is reported at once, by flag."""
    import dataclasses

    from pipeline.cli_settings import check_settings_travel

    settings, _ = cli.settings_from_args(_parse("run", "--events", "x.tsv"))
    wrong = dataclasses.replace(settings, trainer=dataclasses.replace(settings.trainer, epochs=2.5))
    with pytest.raises(ValueError, match=r"^settings: setting --epochs must be int, got 2\.5$"):
        check_settings_travel(wrong)
