"""Which `pin2vec run` flag sets which settings field, so that an error raised by a settings dataclass
(`TrainerSettings.epochs must be >= 1`, `max_bad_share=2.0 is invalid`) reaches the user naming the flag they
typed (`--epochs`, `--max-bad-share`). The settings classes stay free of CLI knowledge; the CLI rewrites their
messages at its boundary with this one table (tests/test_cli.py checks that every field a flag reaches is in
it)."""

from __future__ import annotations

import re

# {role: {settings field: flag}}. A role is the settings class a flag lands in, or "collections" for the
# EventSource built from the --collection-* flags (the same class, other flags).
FLAGS_OF_FIELDS: dict[str, dict[str, str]] = {
    "EventSource": {
        "path": "--events/--sessions",
        "user_col": "--user-col",
        "item_col": "--item-col",
        "time_col": "--time-col",
        "action_col": "--action-col",
        "weight_col": "--weight-col",
        "file_format": "--format",
        "sessions": "--sessions",
    },
    "collections": {
        "path": "--collections",
        "user_col": "--collection-col",
        "item_col": "--collection-item-col",
        "time_col": "--collection-time-col",
    },
    "SessionSettings": {
        "session_gap_seconds": "--session-gap",
        "window": "--window",
        "min_count": "--min-count",
        "eval_user_share": "--eval-user-share",
        "max_bad_share": "--max-bad-share",
    },
    "TrainerSettings": {
        "epochs": "--epochs",
        "warm_epochs": "--warm-epochs",
        "max_pair_updates": "--max-pair-updates",
        "batch_size": "--batch-size",
        "embedding_dim": "--embedding-dim",
        "num_negatives": "--negatives",
        "learning_rate": "--learning-rate",
    },
    "IndexSettings": {"min_recall": "--min-index-recall"},
    "PushSettings": {"min_neighbour_overlap": "--min-neighbour-overlap"},
    "EvaluationSettings": {
        "min_hit_rate_at_10": "--min-hit-rate",
        "max_hit_rate_drop": "--max-hit-rate-drop",
    },
    "RunSettings": {
        "output_dir": "--output-dir",
        "pipeline_name": "--pipeline-name",
        "metadata_path": "--metadata-path",
        "beam_args": "--beam-arg",
        "enable_cache": "--no-cache",
    },
    "MySQLSettings": {
        "host": "--mysql-host",
        "port": "--mysql-port",
        "database": "--mysql-database",
        "user": "--mysql-user",
        "password": "--mysql-password-env",
    },
}

# `pin2vec compile` only: how the Kubeflow pipeline starts the Trainer.
COMPILE_FLAGS_OF_FIELDS: dict[str, dict[str, str]] = {
    "TrainerClusterSettings": {
        "workers": "--trainer-workers",
        "ps": "--trainer-ps",
        "project": "--vertex-project",
        "region": "--vertex-region",
        "machine_type": "--trainer-machine-type",
        "ps_machine_type": "--trainer-ps-machine-type",
        "service_account": "--vertex-service-account",
    },
}

# Fields a second flag also reaches, which messages need not name: --sessions implies file_format "sessions";
# without --collection-item-col, boards use --item-col.
ALSO_SET_BY: dict[tuple[str, str], str] = {
    ("EventSource", "file_format"): "--sessions",
    ("collections", "item_col"): "--item-col",
}


def name_flags(message: str, role: str) -> str:
    """`message` with each field of `role` replaced by the flag that sets it: as `Class.field`, as `field=`,
    or bare when the name has an underscore (a plain word such as "path" is left alone elsewhere)."""
    fields = FLAGS_OF_FIELDS[role] if role in FLAGS_OF_FIELDS else COMPILE_FLAGS_OF_FIELDS[role]
    for field in sorted(fields, key=len, reverse=True):  # longest first: time_col before a shorter suffix
        name = re.escape(field)
        qualified = rf"\b(?:[A-Z]\w*Settings|EventSource)\.{name}\b"
        bare = rf"(?<![\w.\-]){name}\b(?![\-])" if "_" in field else rf"(?<![\w.\-]){name}(?==)"
        message = re.sub(f"{qualified}|{bare}", fields[field], message)
    return message
