"""Checks of a run's inputs that need no TensorFlow, so that a mistyped path, an empty directory or a missing
column is reported in about a second rather than after the tens of seconds TensorFlow and TFX take to load."""

from __future__ import annotations

from components.session_example_gen import spans_lib
from components.session_example_gen.input_files import check_input_files, list_input_files
from pipeline.config import PipelineSettings
from pipeline.flag_names import name_flags


def check_local_inputs(settings: PipelineSettings) -> None:
    """Every local input (events or sessions, collections) exists, has rows and the columns asked for; remote
    inputs (gs://...) are checked by their steps, where the cluster can read them. For a span pattern, every
    file of any span is checked (which spans are read is decided with TFX's rules once TFX is loaded)."""
    if settings.num_spans is not None and not spans_lib.has_span_spec(settings.source.path):
        raise ValueError(
            f"--days {settings.num_spans} needs --events with a span pattern ({{SPAN}} or {{YYYY}}-{{MM}}-"
            f"{{DD}}, e.g. 'logs/{{YYYY}}-{{MM}}-{{DD}}/*.parquet'), got {settings.source.path!r}"
        )
    if settings.num_spans is not None and settings.num_spans < 1:
        raise ValueError(f"--days must be at least 1, got {settings.num_spans}")
    inputs = [
        ("--events/--sessions", "EventSource", settings.source),
        ("--collections", "collections", settings.collections),
    ]
    for flag, role, source in inputs:
        if source is None or "://" in source.path:
            continue
        if flag == "--collections" and spans_lib.has_span_spec(source.path):
            raise ValueError(
                f"--collections {source.path}: span patterns are read for --events only; give the "
                "collections as a file, a directory or a glob"
            )
        try:
            if spans_lib.has_span_spec(source.path):
                files = spans_lib.list_pattern_paths(source.path)
                if not files:
                    as_glob = spans_lib.pattern_glob(source.path)
                    raise FileNotFoundError(f"no file matches the span pattern (as a glob: {as_glob!r})")
            else:
                files = list_input_files(source.path)
            check_input_files(files, source)
        except (FileNotFoundError, ValueError) as error:
            raise type(error)(f"{flag} {source.path}: {name_flags(str(error), role)}") from error
