"""`pin2vec`: parses arguments and calls the runners; no pipeline logic lives here.

Heavy imports (TensorFlow, TFX) happen inside the commands that need them, so `pin2vec --help`,
`pin2vec data` and `pin2vec related` start quickly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

# Library deprecation notices (google-api-core, Beam, TF) are not actionable for a pin2vec user.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2 (tf-keras), as TFX 1.16 expects
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MAX_K = 1000


def _add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="fetch a data set into a local cache")
    data.add_argument("dataset", choices=["movielens-100k"])
    data.add_argument("--out", default="work/data/ml-100k", help="cache directory (default: %(default)s)")


def _add_settings_flags(parser) -> None:
    source = parser.add_argument_group("input")
    what = source.add_mutually_exclusive_group(required=True)
    what.add_argument("--events", help="engagement events: a CSV/TSV/Parquet file, a directory or a glob")
    what.add_argument(
        "--sessions", help="pre-sessionized input: one session per line, ids separated by spaces"
    )
    source.add_argument("--user-col", default="user_id")
    source.add_argument("--item-col", default="item_id")
    source.add_argument("--time-col", default="timestamp")
    source.add_argument("--action-col", default=None)
    source.add_argument("--weight-col", default=None)
    source.add_argument("--format", default="auto", choices=["auto", "csv", "tsv", "parquet"])

    sessions = parser.add_argument_group("sessions and pairs")
    sessions.add_argument(
        "--session-gap", type=int, default=1800, help="seconds of inactivity that end a session"
    )
    sessions.add_argument(
        "--window", type=int, default=5, help="items per sliding window, the example included"
    )
    sessions.add_argument("--min-count", type=int, default=5, help="drop items with fewer engagements")
    sessions.add_argument("--eval-fraction", type=float, default=0.1, help="latest share of time held out")
    sessions.add_argument(
        "--max-bad-share", type=float, default=0.01, help="fail above this share of bad rows"
    )

    trainer = parser.add_argument_group("trainer")
    trainer.add_argument("--epochs", type=int, default=None)
    trainer.add_argument("--batch-size", type=int, default=None)
    trainer.add_argument("--embedding-dim", type=int, default=None)
    trainer.add_argument("--negatives", type=int, default=None)
    trainer.add_argument("--learning-rate", type=float, default=None)

    evaluation = parser.add_argument_group("gates")
    evaluation.add_argument("--min-hit-rate", type=float, default=None, help="Evaluator floor for HR@10")
    evaluation.add_argument(
        "--max-hit-rate-drop",
        type=float,
        default=None,
        help="tolerated HR@10 drop against the last blessed model",
    )
    evaluation.add_argument("--min-index-recall", type=float, default=None, help="ScaNN recall@10 floor")

    run = parser.add_argument_group("where and how")
    run.add_argument("--output-dir", default="work/runs/default")
    run.add_argument("--pipeline-name", default="pin2vec")
    run.add_argument("--metadata-path", default=None, help="SQLite ML Metadata file")
    run.add_argument("--mysql-host", default=None, help="use a MySQL ML Metadata store")
    run.add_argument("--mysql-port", type=int, default=3306)
    run.add_argument("--mysql-database", default="pin2vec")
    run.add_argument("--mysql-user", default="")
    run.add_argument(
        "--mysql-password-env",
        default="PIN2VEC_MYSQL_PASSWORD",
        help="environment variable holding the MySQL password",
    )
    run.add_argument(
        "--beam-arg",
        action="append",
        default=None,
        help="a Beam pipeline option, repeatable, written as --beam-arg=--OPTION=VALUE "
        "(replaces the default: DirectRunner, multi-process for inputs over 256 MB)",
    )
    run.add_argument("--no-cache", action="store_true", help="rerun every step")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pin2vec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_parser(sub)

    run = sub.add_parser("run", help="run the whole pipeline locally (LocalDagRunner + Beam)")
    _add_settings_flags(run)
    run.add_argument("--titles", default=None, help="TSV item_id<TAB>title, to show names in the summary")
    run.add_argument("--verbose", action="store_true", help="print every log line, not just progress")

    related = sub.add_parser("related", help="related items from the latest pushed model and index")
    related.add_argument("ids", nargs="*")
    related.add_argument("--ids-file", default=None, help="one id per line")
    related.add_argument("--k", type=int, default=10)
    related.add_argument("--json", action="store_true")
    related.add_argument("--output-dir", default="work/runs/default", help="the run's output directory")
    related.add_argument("--serving-dir", default=None, help="defaults to <output-dir>/serving")
    related.add_argument("--titles", default=None)

    compile_ = sub.add_parser("compile", help="compile the pipeline for Kubeflow Pipelines")
    compile_.add_argument("--kubeflow", required=True, metavar="OUT.json")
    compile_.add_argument("--image", default="pin2vec:latest")
    _add_settings_flags(compile_)
    return parser


def settings_from_args(args):
    import dataclasses

    from components.scann_indexer.index_lib import IndexSettings
    from components.session_example_gen.sessions_lib import EventSource, SessionSettings
    from pipeline.config import (
        EvaluationSettings,
        MySQLSettings,
        PipelineSettings,
        RunSettings,
    )
    from trainer_module.model import TrainerSettings

    def overrides(cls, **values):
        return dataclasses.replace(cls(), **{k: v for k, v in values.items() if v is not None})

    source = EventSource(
        path=args.events or args.sessions,
        user_col=args.user_col,
        item_col=args.item_col,
        time_col=args.time_col,
        action_col=args.action_col,
        weight_col=args.weight_col,
        file_format="sessions" if args.sessions else args.format,
        sessions=bool(args.sessions),
    )
    settings = PipelineSettings(
        source=source,
        sessions=SessionSettings(
            session_gap_seconds=args.session_gap,
            window=args.window,
            min_count=args.min_count,
            eval_fraction=args.eval_fraction,
            max_bad_share=args.max_bad_share,
        ),
        trainer=overrides(
            TrainerSettings,
            epochs=args.epochs,
            batch_size=args.batch_size,
            embedding_dim=args.embedding_dim,
            num_negatives=args.negatives,
            learning_rate=args.learning_rate,
        ),
        index=overrides(IndexSettings, min_recall=args.min_index_recall),
        evaluation=overrides(
            EvaluationSettings, min_hit_rate_at_10=args.min_hit_rate, max_hit_rate_drop=args.max_hit_rate_drop
        ),
    )
    mysql = None
    if args.mysql_host:
        mysql = MySQLSettings(
            host=args.mysql_host,
            port=args.mysql_port,
            database=args.mysql_database,
            user=args.mysql_user,
            password=os.environ.get(args.mysql_password_env, ""),
        )
    run = RunSettings(
        output_dir=os.path.abspath(args.output_dir),
        pipeline_name=args.pipeline_name,
        metadata_path=args.metadata_path,
        mysql=mysql,
        beam_args=tuple(args.beam_arg) if args.beam_arg else None,
        enable_cache=not args.no_cache,
    )
    return settings, run


def _load_titles(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    from engagement_data.movielens import load_titles

    return load_titles(path)


def cmd_data(args) -> int:
    from engagement_data.movielens import fetch_movielens_100k

    files = fetch_movielens_100k(args.out)
    print(f"MovieLens-100K ready ({files.source}):\n  ratings: {files.ratings}\n  titles:  {files.titles}")
    return 0


def cmd_run(args) -> int:
    from pipeline.local_runner import run_local
    from pipeline.metadata import connection_config
    from pipeline.report import print_summary
    from pipeline.summary import summarize_run

    settings, run = settings_from_args(args)
    print(
        f"pin2vec: running the pipeline on {settings.source.path}\n  outputs: {run.output_dir}",
        file=sys.stderr,
    )
    result = run_local(settings, run, verbose=args.verbose)
    summary = summarize_run(connection_config(run), run.pipeline_name, run.pipeline_root)
    print_summary(summary, run, result, titles_file=args.titles)
    return 0


def cmd_related(args) -> int:
    from serving.index_searcher import RelatedItemsSearcher, latest_version_dir

    ids = list(args.ids)
    if args.ids_file:
        with open(args.ids_file, encoding="utf-8") as f:
            ids += [line.strip() for line in f if line.strip()]
    if not ids:
        print("pin2vec related: give item ids as arguments or with --ids-file", file=sys.stderr)
        return 2
    if not 1 <= args.k <= MAX_K:
        print(f"pin2vec related: --k must be between 1 and {MAX_K}, got {args.k}", file=sys.stderr)
        return 2
    base = os.path.join(args.serving_dir or os.path.join(args.output_dir, "serving"), "related")
    version_dir = latest_version_dir(base)
    if version_dir is None:
        print(
            f"pin2vec related: no pushed index under {base}; run `pin2vec run` first "
            "(or check that its last run was pushed)",
            file=sys.stderr,
        )
        return 1
    answers = RelatedItemsSearcher(version_dir).related(ids, args.k)
    if args.json:
        print(
            json.dumps(
                {
                    i: None if a is None else [{"item": r, "score": float(s)} for r, s in a]
                    for i, a in answers.items()
                }
            )
        )
        return 0
    titles = _load_titles(args.titles)
    named = lambda i: f"{i} {titles[i]}" if i in titles else i  # noqa: E731
    print(f"(index {version_dir})")
    for item, answer in answers.items():
        if answer is None:
            print(f"\n{named(item)}: unknown item (not in the pushed vocabulary)")
            continue
        print(f"\nRelated to {named(item)}:")
        for rank, (other, score) in enumerate(answer, 1):
            print(f"  {rank:2d}. {score:.3f}  {named(other)}")
    return 0


def cmd_compile(args) -> int:
    from pipeline.kubeflow_runner import compile_kubeflow

    settings, run = settings_from_args(args)
    out = compile_kubeflow(settings, run, args.kubeflow, image=args.image)
    print(f"Kubeflow pipeline spec written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    handler = {"data": cmd_data, "run": cmd_run, "related": cmd_related, "compile": cmd_compile}
    try:
        return handler[args.command](args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"pin2vec {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
