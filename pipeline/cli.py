"""`pin2vec`: related items from engagement sessions (Pin2Vec as a TFX pipeline): run it, serve it, ask it.

This module dispatches each command to the code that does it; no pipeline logic lives here. Its parsers are in
pipeline/cli_parsers.py, flags -> settings in pipeline/cli_settings.py. Heavy imports (TensorFlow, TFX) happen
inside the commands that need them, so `pin2vec --help`, `pin2vec data` and `pin2vec related` start quickly.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from pipeline.cli_parsers import MAX_K, build_parser
from pipeline.cli_settings import settings_from_args
from pipeline.data_cli import cmd_data
from pipeline.quiet_start import NoOptionalPackageNotes, import_tensorflow_quietly

__all__ = ["MAX_K", "build_parser", "main", "settings_from_args"]  # what tests and the entry point use

# Library deprecation notices (google-api-core, Beam, TF) are not actionable for a pin2vec user.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2 (tf-keras), as TFX 1.16 expects
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _load_titles(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    from formats.titles import load_titles

    return load_titles(path)


def cmd_run(args) -> int:
    from pipeline.input_checks import check_local_inputs
    from pipeline.run_lock import run_lock

    settings, run = settings_from_args(args)
    check_local_inputs(settings)  # before TensorFlow and TFX load: mistakes are reported in about a second
    if run.mysql:
        from pipeline.mysql_check import server_version

        server_version(run.mysql)  # a wrong --mysql-host/--mysql-port too
    # One run per output directory: taken before anything is written there, held until the summary is out.
    waiting = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    try:
        with run_lock(run.output_dir, wait=args.wait, on_wait=waiting):
            return _run_locked(args, settings, run)
    except OSError as error:  # the lock or the summary on a full disk; the pipeline's own say so already
        from pipeline.disk_full import reraise_if_disk_full

        reraise_if_disk_full(error, run.output_dir)
        raise


def _run_locked(args, settings, run) -> int:
    import_tensorflow_quietly()
    import dataclasses

    from pipeline.config import with_input_size_defaults
    from pipeline.local_runner import input_size_bytes, run_local
    from pipeline.metadata import connection_config
    from pipeline.report import print_summary
    from pipeline.summary import summarize_run

    if args.titles:  # the run report names the example items
        settings = dataclasses.replace(settings, titles_path=os.path.abspath(args.titles))
    input_bytes = input_size_bytes(settings.source.path, settings.num_spans)
    settings = with_input_size_defaults(
        settings, input_bytes, size_eval_user_share=args.eval_user_share is None
    )
    print(
        f"pin2vec: running the pipeline on {settings.source.path}\n  outputs: {run.output_dir}",
        file=sys.stderr,
    )
    result = run_local(settings, run, verbose=args.verbose)
    summary = summarize_run(
        connection_config(run),
        run.pipeline_name,
        run.pipeline_root,
        run_id=result["run_id"],
        gate=settings.evaluation,
    )
    print_summary(summary, run, result, titles_file=args.titles)
    return 0


def cmd_related(args) -> int:
    from pipeline.related_answers import answers_json, answers_text, k_over_cap_warning
    from serving.related_sources import open_related

    ids = list(args.ids)
    if args.ids_file:
        try:
            with open(args.ids_file, encoding="utf-8") as f:
                listed = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            print(f"pin2vec related: --ids-file {args.ids_file}: cannot read it: {error}", file=sys.stderr)
            return 2
        if not listed:
            print(
                f"pin2vec related: --ids-file {args.ids_file} holds no item id (it is empty or only blank "
                "lines); expected one id per line",
                file=sys.stderr,
            )
            return 2
        ids += listed
    if not ids:
        print("pin2vec related: give item ids as arguments or with --ids-file", file=sys.stderr)
        return 2
    if not 1 <= args.k <= MAX_K:
        print(f"pin2vec related: --k must be between 1 and {MAX_K}, got {args.k}", file=sys.stderr)
        return 2
    serving_dir = args.serving_dir or os.path.join(args.output_dir, "serving")
    try:
        answerer, version_dir = open_related(serving_dir, args.source, max_k=max(args.k, 100))
    except (FileNotFoundError, ValueError) as error:
        print(f"pin2vec related: {error}", file=sys.stderr)
        return 1
    source, first = answerer.answerers[0]
    cap = getattr(first, "top_n", None)  # candidate tables keep a fixed number per item
    if cap is not None and args.k > cap:
        print(f"pin2vec related: warning: {k_over_cap_warning(source, cap, args.k)}", file=sys.stderr)
    answers = answerer.related(ids, args.k)
    if args.json:
        print(answers_json(answers))
        return 0
    sources = [source for source, _ in answerer.answerers]
    print(answers_text(answers, sources, version_dir, _load_titles(args.titles)))
    return 0


def cmd_serve(args) -> int:
    import_tensorflow_quietly()
    from serving.predict import RequestLimits
    from serving.related_model import RelatedSettings
    from serving.server import ServerSettings, run

    settings = ServerSettings(
        model_base=os.path.abspath(args.model_base),
        host=args.host,
        rest_port=args.rest_port,
        grpc_port=args.grpc_port,
        poll_seconds=args.poll_seconds,
        keep_versions=args.keep_versions,
        limits=RequestLimits(
            max_body_bytes=args.max_body_bytes, max_instances=args.max_instances, timeout_s=args.timeout_s
        ),
        related=RelatedSettings(max_k=args.max_k),
        rest_header_timeout_s=args.rest_header_timeout_s,
        grpc_workers=args.grpc_workers,
        event_loop=args.event_loop,
        grpc_frontend=args.grpc_frontend,
        model_config_file=args.model_config_file and os.path.abspath(args.model_config_file),
    )
    return run(settings, access_log_path=args.access_log)


def cmd_rollback(args) -> int:
    from serving.rollback import rollback

    serving_dir = args.serving_dir or os.path.join(args.output_dir, "serving")
    print(rollback(serving_dir, to=args.to, previous=args.previous, release=args.release))
    return 0


def cmd_export_related(args) -> int:
    import_tensorflow_quietly()
    from serving.export_related import ExportSettings, export_related
    from serving.related_sources import default_source

    serving_dir = args.serving_dir or os.path.join(args.output_dir, "serving")
    settings = ExportSettings(
        serving_dir=serving_dir,
        out=args.out,
        source=args.source or default_source(serving_dir),
        k=args.k,
        version=args.version,
        formats=("parquet", "tfrecord") if args.format == "both" else (args.format,),
        batch_size=args.batch_size,
        beam_args=tuple(args.beam_arg or ()),
    )
    written = export_related(settings)
    print(f"Related items of {settings.source} written:\n" + "\n".join(f"  {path}" for path in written))
    return 0


def cmd_export_embeddings(args) -> int:
    import_tensorflow_quietly()
    from serving.embedding_export import (
        EmbeddingExportSettings,
        export_embeddings,
        latest_cooccurrence_popularity,
    )

    settings = EmbeddingExportSettings(
        serving_dir=args.serving_dir or os.path.join(args.output_dir, "serving"),
        out=args.out,
        format=args.format,
    )
    popularity = None
    if args.format == "tsv" and not args.serving_dir:
        popularity = latest_cooccurrence_popularity(args.output_dir)
    loaded, written = export_embeddings(settings, titles=_load_titles(args.titles), popularity=popularity)
    print(
        f"{len(loaded.item_ids)} item vectors ({loaded.vectors.shape[1]}-d, from {loaded.source}) written:\n"
        + "\n".join(f"  {path}" for path in written)
    )
    return 0


def cmd_gc(args) -> int:
    from pipeline.config import RunSettings
    from pipeline.gc import collect_garbage, describe
    from pipeline.gc_plan import check_keep
    from pipeline.metadata import connection_config
    from pipeline.run_lock import run_lock

    check_keep(args.keep)
    run = RunSettings(
        output_dir=os.path.abspath(args.output_dir),
        pipeline_name=args.pipeline_name,
        metadata_path=args.metadata_path,
    )
    if not os.path.isfile(run.sqlite_path):
        raise FileNotFoundError(f"no ML Metadata store at {run.sqlite_path}: is --output-dir a run's output?")
    with run_lock(run.output_dir):  # no run writes while artifacts go
        result = collect_garbage(
            connection_config(run),
            run.pipeline_name,
            run.pipeline_root,
            run.serving_dir,
            keep=args.keep,
            dry_run=args.dry_run,
        )
    print(describe(result, run.output_dir))
    return 0


def cmd_compile(args) -> int:
    from pipeline.cli_settings import built
    from pipeline.config import TrainerClusterSettings, with_input_size_defaults

    settings, run = settings_from_args(args)  # flags checked before TensorFlow loads: errors in a second
    trainer_cluster = built(
        "TrainerClusterSettings",
        TrainerClusterSettings,
        workers=args.trainer_workers,
        ps=args.trainer_ps,
        project=args.vertex_project,
        region=args.vertex_region,
        machine_type=args.trainer_machine_type,
        ps_machine_type=args.trainer_ps_machine_type,
        service_account=args.vertex_service_account,
    )
    import_tensorflow_quietly()
    from pipeline.kubeflow_runner import compile_kubeflow
    from pipeline.local_runner import input_size_bytes

    try:  # the size-dependent defaults the local runner would use, when the compiler can read the input
        input_bytes = input_size_bytes(settings.source.path, settings.num_spans)
    except Exception as error:
        print(
            f"pin2vec compile: input size not read ({error}); size-dependent defaults left as set",
            file=sys.stderr,
        )
    else:
        size_share = args.eval_user_share is None
        settings = with_input_size_defaults(settings, input_bytes, size_eval_user_share=size_share)
    out = compile_kubeflow(
        settings,
        run,
        args.kubeflow,
        image=args.image,
        input_fingerprint=args.input_fingerprint,
        trainer_cluster=trainer_cluster,
    )
    print(f"Kubeflow pipeline spec written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(NoOptionalPackageNotes())
    # Beam's type-hint inference notes ("Using Any for unsupported type") are not actionable for a user.
    logging.getLogger("apache_beam.typehints").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    handler = {
        "data": cmd_data,
        "run": cmd_run,
        "related": cmd_related,
        "compile": cmd_compile,
        "serve": cmd_serve,
        "rollback": cmd_rollback,
        "export-related": cmd_export_related,
        "export-embeddings": cmd_export_embeddings,
        "gc": cmd_gc,
    }
    try:
        return handler[args.command](args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"pin2vec {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
