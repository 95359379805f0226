"""`pin2vec`'s argument parsers: every command's flags, their help and defaults. Only argparse and plain
constants load here, so that `pin2vec --help` answers without TensorFlow (tests/test_cli.py checks)."""

from __future__ import annotations

import argparse

from formats.serving_layout import SOURCE_MODELS  # plain constants: no TensorFlow
from pipeline.data_cli import add_data_parser
from pipeline.version import version_text

DESCRIPTION = (
    "`pin2vec`: related items from engagement sessions (Pin2Vec as a TFX pipeline): run it, serve it, ask it."
)
MAX_K = 1000  # the most related items `pin2vec related --k` may ask for


class HelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default (argparse's ArgumentDefaultsHelpFormatter, less the noise):
    not for switches (False), nor for a None default, whose help says in words what happens without it."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "%(default)" not in text and "default:" not in text:
            text += " (default: %(default)s)"
        return text


def _trainer_default(field: str) -> str:
    from trainer_module.settings import TrainerSettings  # stdlib only: --help stays fast

    return f"(default: {getattr(TrainerSettings(), field)})"


def _add_settings_flags(parser) -> None:
    source = parser.add_argument_group("input")
    what = source.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--events",
        help="engagement events: a CSV/TSV/Parquet file, a directory, a glob, or a TFX span pattern such as "
        "'logs/{YYYY}-{MM}-{DD}/*.parquet' or 'logs/span-{SPAN}/*.csv' (docs/SPANS.md)",
    )
    what.add_argument(
        "--sessions", help="pre-sessionized input: one session per line, ids separated by spaces"
    )
    source.add_argument(
        "--days",
        type=int,
        default=None,
        metavar="N",
        help="with a span pattern: read the latest N spans (days), TFX's RollingRange; missing days inside "
        "the window are skipped and named in the summary (default: the latest span only)",
    )
    source.add_argument("--user-col", default="user_id", help="the column naming the user")
    source.add_argument("--item-col", default="item_id", help="the column naming the item")
    source.add_argument("--time-col", default="timestamp", help="the column with the event time")
    source.add_argument(
        "--action-col", default=None, help="a column with the kind of engagement (default: none)"
    )
    source.add_argument(
        "--weight-col",
        default=None,
        help="a numeric column; rows with weight <= 0 are dropped (default: none, every row counts)",
    )
    source.add_argument(
        "--format",
        default="auto",
        choices=["auto", "csv", "tsv", "parquet"],
        help="file format; auto decides by each file's extension",
    )
    boards = parser.add_argument_group("collections (optional: the `board` co-occurrence source)")
    boards.add_argument(
        "--collections",
        default=None,
        help="items saved to boards: a CSV/TSV/Parquet file, a directory or a glob",
    )
    boards.add_argument(
        "--collection-col",
        default="board",
        help="the column naming the board (collection); `pin2vec data synthetic --boards` writes board_id",
    )
    boards.add_argument("--collection-item-col", default=None, help="the item column (default: --item-col)")
    boards.add_argument(
        "--collection-time-col",
        default=None,
        help="save time (default: none, the order of rows in each file)",
    )

    sessions = parser.add_argument_group("sessions and pairs")
    sessions.add_argument(
        "--session-gap", type=int, default=1800, help="seconds of inactivity that end a session"
    )
    sessions.add_argument(
        "--window", type=int, default=5, help="items per sliding window, the example included"
    )
    sessions.add_argument("--min-count", type=int, default=5, help="drop items with fewer engagements")
    sessions.add_argument(
        "--eval-user-share",
        type=float,
        default=None,
        help="share of users whose last engagements are held out for validation and test "
        "(default: all for logs up to 32 MB, proportionally fewer beyond, so evaluation cost stays bounded)",
    )
    sessions.add_argument(
        "--max-bad-share", type=float, default=0.01, help="fail above this share of bad rows"
    )

    trainer = parser.add_argument_group("trainer")
    trainer.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"passes over the training pairs of a cold start {_trainer_default('epochs')}",
    )
    trainer.add_argument(
        "--max-pair-updates",
        type=int,
        default=None,
        help="stop after the epoch that would pass this many pair updates (pairs x 2 directions x epochs): "
        "fewer passes over large logs, at a quality cost (docs/BENCHMARKS.md); 0: no cap "
        f"{_trainer_default('max_pair_updates')}",
    )
    trainer.add_argument(
        "--warm-epochs",
        type=int,
        default=None,
        help="epochs of a warm start from the last blessed model, chosen in docs/BENCHMARKS.md "
        f"{_trainer_default('warm_epochs')}",
    )
    trainer.add_argument(
        "--cold-start",
        action="store_true",
        help="train from scratch even when a blessed model exists (default: warm start from the newest "
        "blessed model not trained on these examples, its items' rows carried over by id)",
    )
    trainer.add_argument(
        "--batch-size", type=int, default=None, help=f"pairs per step {_trainer_default('batch_size')}"
    )
    trainer.add_argument(
        "--embedding-dim",
        type=int,
        default=None,
        help=f"size of an item's embedding (the hidden layer) {_trainer_default('embedding_dim')}",
    )
    trainer.add_argument(
        "--negatives",
        type=int,
        default=None,
        help=f"sampled negatives per batch of the softmax {_trainer_default('num_negatives')}",
    )
    trainer.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help=f"the optimizer's step size {_trainer_default('learning_rate')}",
    )

    evaluation = parser.add_argument_group("gates")
    # Their defaults live in pipeline/config.py and index_lib.py (which load numpy): written out here so that
    # --help stays fast; tests/test_cli.py keeps them equal.
    evaluation.add_argument(
        "--min-hit-rate", type=float, default=None, help="Evaluator floor for HR@10 (default: 0.01)"
    )
    evaluation.add_argument(
        "--max-hit-rate-drop",
        type=float,
        default=None,
        help="tolerated HR@10 drop against the last blessed model (default: 0.0, never worse)",
    )
    evaluation.add_argument(
        "--min-index-recall", type=float, default=None, help="ScaNN recall@10 floor (default: 0.9)"
    )
    evaluation.add_argument(
        "--min-neighbour-overlap",
        type=float,
        default=None,
        help="refuse the whole push when the default source's related lists keep less than this share of the "
        "served version's (overlap@10, e.g. 0.7; off by default): holds back daily reshuffles",
    )

    run = parser.add_argument_group("where and how")
    run.add_argument(
        "--output-dir", default="work/runs/default", help="where the run writes (pipeline/, serving/, logs/)"
    )
    run.add_argument("--pipeline-name", default="pin2vec", help="the pipeline's name in ML Metadata")
    run.add_argument(
        "--metadata-path",
        default=None,
        help="SQLite ML Metadata file (default: <output-dir>/metadata.sqlite)",
    )
    run.add_argument(
        "--mysql-host", default=None, help="use a MySQL ML Metadata store on this host (default: SQLite)"
    )
    run.add_argument("--mysql-port", type=int, default=3306, help="MySQL port")
    run.add_argument("--mysql-database", default="pin2vec", help="MySQL database")
    run.add_argument("--mysql-user", default="", help="MySQL user (default: none)")
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


def _add_serve_parser(sub) -> None:
    serve = sub.add_parser(
        "serve", help="serve the pushed models over TF Serving's REST and gRPC APIs (embedding, related)"
    )
    serve.add_argument(
        "--model-base", required=True, help="the run's serving directory, <output-dir>/serving"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--rest-port", type=int, default=8501, help="0 picks a free port")
    serve.add_argument("--grpc-port", type=int, default=8500, help="0 picks a free port")
    serve.add_argument("--poll-seconds", type=float, default=1.0, help="how often the model base is scanned")
    serve.add_argument("--keep-versions", type=int, default=2, help="newest versions kept loaded per model")
    serve.add_argument(
        "--model-config-file",
        default=None,
        help="TF Serving's model config (text proto): per model a version policy and version labels "
        "(stable, canary), read again when it changes; see docs/SERVING.md",
    )
    serve.add_argument("--max-k", type=int, default=100, help="largest k a related request may ask")
    serve.add_argument("--max-instances", type=int, default=1024, help="rows per request")
    serve.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024, help="largest request body")
    serve.add_argument("--timeout-s", type=float, default=10.0, help="per-request deadline")
    serve.add_argument(
        "--rest-header-timeout-s",
        type=float,
        default=30.0,
        help="close REST connections idle or slow to send their request for this long",
    )
    serve.add_argument("--access-log", default=None, help="JSON-lines access log file (default: stderr)")
    serve.add_argument(
        "--grpc-workers",
        type=int,
        default=1,
        help="processes answering gRPC on the one port, each with its own copy of the models: about one "
        "core each (default: %(default)s)",
    )
    serve.add_argument(
        "--event-loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the event loop the front ends run on (default: %(default)s, the faster)",
    )
    serve.add_argument(
        "--grpc-frontend",
        choices=["auto", "native", "python"],
        default="auto",
        help="gRPC transport: native (grpc++, built by make setup), python (grpc.aio), or auto: native when "
        "built (default: %(default)s)",
    )


def _add_export_related_parser(sub) -> None:
    export = sub.add_parser(
        "export-related", help="write every item's related items (Parquet and TFRecord), with Beam"
    )
    export.add_argument("--out", required=True, help="output directory")
    export.add_argument("--k", type=int, default=50, help="related items per item")
    export.add_argument("--output-dir", default="work/runs/default", help="the run's output directory")
    export.add_argument("--serving-dir", default=None, help="defaults to <output-dir>/serving")
    export.add_argument("--version", type=int, default=None, help="index version (default: the latest)")
    export.add_argument(
        "--format", choices=["both", "parquet", "tfrecord"], default="both", help="which files to write"
    )
    export.add_argument(
        "--source",
        choices=list(SOURCE_MODELS),
        default=None,
        help="which source: an index (pin2vec: what the network predicts next; pin2vec_similar: its cosine "
        "neighbours) or a table (cooccurrence, board, blend, coldstart) (default: the source serving answers "
        "from, the run's best on validation)",
    )
    export.add_argument("--batch-size", type=int, default=1024, help="items searched per index call")
    export.add_argument(
        "--beam-arg",
        action="append",
        default=None,
        help="a Beam pipeline option, repeatable (default: the local DirectRunner)",
    )


def _add_export_embeddings_parser(sub) -> None:
    export = sub.add_parser(
        "export-embeddings",
        help="write the pushed item vectors as word2vec text (gensim) or TSV (TensorBoard projector)",
    )
    export.add_argument(
        "--format", choices=["word2vec", "tsv"], required=True, help="word2vec text or TSV files"
    )
    export.add_argument(
        "--out",
        required=True,
        help="word2vec: the file; tsv: a directory receiving vectors.tsv and metadata.tsv, or a file-name "
        "prefix ending in '_', '-' or '.'",
    )
    where = export.add_mutually_exclusive_group()
    where.add_argument("--output-dir", default="work/runs/default", help="the run's output directory")
    where.add_argument("--serving-dir", default=None, help="a serving directory (instead of --output-dir)")
    export.add_argument("--titles", default=None, help="TSV item_id<TAB>title, for the tsv metadata")


class _VersionAction(argparse.Action):
    """argparse's version action, but asks git only when --version is given."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser shows defaults in its --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_gc_parser(sub) -> None:
    gc = sub.add_parser(
        "gc",
        help="delete old pipeline artifacts and serving versions, keeping the newest runs, the served and "
        "pinned versions, and what the next run's cache needs",
    )
    gc.add_argument("--output-dir", default="work/runs/default", help="the run's output directory")
    gc.add_argument(
        "--keep",
        type=int,
        required=True,
        metavar="N",
        help="keep the artifacts of the newest N pipeline runs and the newest N committed serving versions",
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    gc.add_argument("--pipeline-name", default="pin2vec", help="the pipeline's name in ML Metadata")
    gc.add_argument(
        "--metadata-path",
        default=None,
        help="SQLite ML Metadata file (default: <output-dir>/metadata.sqlite)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pin2vec", description=DESCRIPTION)
    parser.add_argument("--version", action=_VersionAction, help="print pin2vec's version (and git commit)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_data_parser(sub)

    run = sub.add_parser("run", help="run the whole pipeline locally (LocalDagRunner + Beam)")
    _add_settings_flags(run)
    run.add_argument("--titles", default=None, help="TSV item_id<TAB>title, to show names in the summary")
    run.add_argument("--verbose", action="store_true", help="print every log line, not just progress")
    run.add_argument(
        "--wait",
        action="store_true",
        help="when another run holds the output directory, wait for it to finish (default: fail at once)",
    )

    related = sub.add_parser("related", help="related items from the latest pushed model and index")
    related.add_argument("ids", nargs="*", help="item ids")
    related.add_argument("--ids-file", default=None, help="a file of item ids, one per line")
    related.add_argument(
        "--k",
        type=int,
        default=10,
        help=f"related items per id, at most {MAX_K}; a co-occurrence, board or blend source holds at most "
        "the candidates per item its push kept (100 by default), and says so",
    )
    related.add_argument("--json", action="store_true", help="print JSON: {id: [{item, score}] or null}")
    related.add_argument("--output-dir", default="work/runs/default", help="the run's output directory")
    related.add_argument("--serving-dir", default=None, help="defaults to <output-dir>/serving")
    related.add_argument("--titles", default=None, help="TSV item_id<TAB>title, to show names")
    related.add_argument(
        "--source",
        choices=list(SOURCE_MODELS),
        default=None,
        help="candidate source (default: the best on the last pushed run's validation queries)",
    )

    _add_serve_parser(sub)
    rollback = sub.add_parser(
        "rollback",
        help="serve an earlier pushed version (nothing is deleted), or the newest again with --release",
    )
    rollback.add_argument("--output-dir", default="work/runs/default", help="the run's output directory")
    rollback.add_argument("--serving-dir", default=None, help="defaults to <output-dir>/serving")
    target = rollback.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=int, default=None, metavar="VERSION", help="a pushed version")
    target.add_argument("--previous", action="store_true", help="the version before the one served now")
    target.add_argument("--release", action="store_true", help="serve the newest pushed version again")
    _add_export_related_parser(sub)
    _add_export_embeddings_parser(sub)
    _add_gc_parser(sub)

    compile_ = sub.add_parser("compile", help="compile the pipeline for Kubeflow Pipelines")
    compile_.add_argument("--kubeflow", required=True, metavar="OUT.json", help="the pipeline spec to write")
    compile_.add_argument("--image", default="pin2vec:latest", help="the container image every step runs")
    compile_.add_argument(
        "--input-fingerprint",
        default=None,
        help="a version of the input data (default: read from the input files; required when they cannot be "
        "read from here), so that the cluster's cache never reuses results of older logs",
    )
    _add_settings_flags(compile_)
    cluster = compile_.add_argument_group(
        "the Trainer on several machines (Vertex AI Training; docs/DISTRIBUTED.md)"
    )
    cluster.add_argument(
        "--trainer-workers",
        type=int,
        default=0,
        help="worker replicas that run the training steps beside the chief (default 0: one process)",
    )
    cluster.add_argument(
        "--trainer-ps",
        type=int,
        default=0,
        help="parameter-server replicas that hold the sharded tables (with --trainer-workers)",
    )
    cluster.add_argument("--vertex-project", default="", help="the Google Cloud project of the training job")
    cluster.add_argument("--vertex-region", default="us-central1", help="its region (default us-central1)")
    cluster.add_argument(
        "--trainer-machine-type",
        default="n1-standard-8",
        help="the chief's and workers' machines (default n1-standard-8)",
    )
    cluster.add_argument(
        "--trainer-ps-machine-type", default="n1-highmem-8", help="the ps replicas' (default n1-highmem-8)"
    )
    cluster.add_argument(
        "--vertex-service-account", default="", help="the training job's service account (default: Vertex's)"
    )
    return parser
