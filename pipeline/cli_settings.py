"""`pin2vec run` and `pin2vec compile` flags -> the typed settings a run is made of. A settings class's
ValueError is raised again naming the flags a user types instead of the fields (pipeline/flag_names.py)."""

from __future__ import annotations

import os

from formats.settings_codec import decode_settings, encode_settings
from pipeline.flag_names import FLAGS_OF_FIELDS, name_flags


def built(role: str, make, *args, **kwargs):
    """`make(*args, **kwargs)`, a settings dataclass; its ValueError is raised again naming the flags a user
    types instead of the fields (pipeline/flag_names.py)."""
    try:
        return make(*args, **kwargs)
    except ValueError as error:
        raise ValueError(name_flags(str(error), role)) from error


def settings_from_args(args):
    import dataclasses

    from components.related_pusher.push_policy import PushSettings
    from components.scann_indexer.index_lib import IndexSettings
    from components.session_example_gen.session_settings import EventSource, SessionSettings
    from pipeline.config import (
        EvaluationSettings,
        MySQLSettings,
        PipelineSettings,
        RunSettings,
    )
    from trainer_module.settings import TrainerSettings

    def overrides(cls, **values):
        return built(
            cls.__name__, dataclasses.replace, cls(), **{k: v for k, v in values.items() if v is not None}
        )

    source = built(
        "EventSource",
        EventSource,
        path=args.events or args.sessions,
        user_col=args.user_col,
        item_col=args.item_col,
        time_col=args.time_col,
        action_col=args.action_col,
        weight_col=args.weight_col,
        file_format="sessions" if args.sessions else args.format,
        sessions=bool(args.sessions),
    )
    collections = None
    if args.collections:
        collections = built(
            "collections",
            EventSource,
            path=args.collections,
            user_col=args.collection_col,
            item_col=args.collection_item_col or args.item_col,
            time_col=args.collection_time_col,  # the format comes from each file's extension
        )
    settings = PipelineSettings(
        source=source,
        num_spans=args.days,
        collections=collections,
        sessions=built(
            "SessionSettings",
            SessionSettings,
            session_gap_seconds=args.session_gap,
            window=args.window,
            min_count=args.min_count,
            eval_user_share=1.0 if args.eval_user_share is None else args.eval_user_share,
            max_bad_share=args.max_bad_share,
        ),
        trainer=overrides(
            TrainerSettings,
            epochs=args.epochs,
            max_pair_updates=args.max_pair_updates,
            warm_epochs=args.warm_epochs,
            batch_size=args.batch_size,
            embedding_dim=args.embedding_dim,
            num_negatives=args.negatives,
            learning_rate=args.learning_rate,
        ),
        index=overrides(IndexSettings, min_recall=args.min_index_recall),
        evaluation=overrides(
            EvaluationSettings, min_hit_rate_at_10=args.min_hit_rate, max_hit_rate_drop=args.max_hit_rate_drop
        ),
        push=PushSettings(min_neighbour_overlap=args.min_neighbour_overlap),
        cold_start=args.cold_start,
    )
    mysql = None
    if args.mysql_host:
        mysql = built(
            "MySQLSettings",
            MySQLSettings,
            host=args.mysql_host,
            port=args.mysql_port,
            database=args.mysql_database,
            user=args.mysql_user,
            password=os.environ.get(args.mysql_password_env, ""),
        )
    run = built(
        "RunSettings",
        RunSettings,
        output_dir=os.path.abspath(args.output_dir),
        pipeline_name=args.pipeline_name,
        metadata_path=args.metadata_path,
        mysql=mysql,
        beam_args=tuple(args.beam_arg) if args.beam_arg else None,
        enable_cache=not args.no_cache,
    )
    check_settings_travel(settings)
    return settings, run


def check_settings_travel(settings) -> None:
    """Every step's settings decode from the JSON they travel to it as (formats/settings_codec.py), checked
    here so that a value of the wrong type is refused in a second, naming its flag, rather than by the step
    that reads it minutes into the run."""
    import dataclasses

    roles = {"EventSource": settings.source, "collections": settings.collections}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value) and f.name not in ("source", "collections"):
            roles[type(value).__name__] = value
    for role, value in roles.items():
        if value is None:
            continue
        text = encode_settings(value)
        if role in FLAGS_OF_FIELDS:
            built(role, decode_settings, type(value), text, "settings")
        else:
            decode_settings(type(value), text, "settings")
