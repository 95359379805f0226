"""Checks of a run's inputs that need no TensorFlow, so that a mistyped path, an empty directory or a missing
column is reported in about a second rather than after the tens of seconds TensorFlow and TFX take to load."""

from __future__ import annotations

from components.session_example_gen.sessions_lib import check_input_files, list_input_files
from pipeline.config import PipelineSettings
from pipeline.flag_names import name_flags


def check_local_inputs(settings: PipelineSettings) -> None:
    """Every local input (events or sessions, collections) exists, has rows and the columns asked for; remote
    inputs (gs://...) are checked by their steps, where the cluster can read them."""
    inputs = [
        ("--events/--sessions", "EventSource", settings.source),
        ("--collections", "collections", settings.collections),
    ]
    for flag, role, source in inputs:
        if source is None or "://" in source.path:
            continue
        try:
            files = list_input_files(source.path)
            check_input_files(files, source)
        except (FileNotFoundError, ValueError) as error:
            raise type(error)(f"{flag} {source.path}: {name_flags(str(error), role)}") from error
