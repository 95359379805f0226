"""ComponentProgress: LocalDagRunner's log lines -> one timed line per component, marking cached ones."""

import io
import logging

from pipeline.progress import ComponentProgress


def _feed(progress, *messages, level=logging.INFO, name="absl"):
    for message in messages:
        progress.handle(logging.LogRecord(name, level, __file__, 1, message, None, None))


def test_cached_component():
    stream = io.StringIO()
    progress = ComponentProgress(stream)
    _feed(progress, "Component Transform is running.", "A cached execution 7 is used.")
    _feed(progress, "Component Transform is finished.")

    [(name, seconds, cached)] = progress.finished
    assert (name, cached) == ("Transform", True)
    assert 0 <= seconds < 60
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("> Transform ...")
    assert "Transform done in" in lines[1]
    assert lines[1].endswith("(cached)")


def test_executed_component_is_not_marked_cached():
    stream = io.StringIO()
    progress = ComponentProgress(stream)
    _feed(progress, "Component Transform is running.", "A cached execution 7 is used.")
    _feed(progress, "Component Transform is finished.")
    _feed(progress, "Component Trainer is running.", "Component Trainer is finished.")

    assert [(name, cached) for name, _, cached in progress.finished] == [
        ("Transform", True),
        ("Trainer", False),
    ]
    trainer_line = stream.getvalue().splitlines()[-1]
    assert "Trainer done in" in trainer_line
    assert "(cached)" not in trainer_line


def test_other_lines_only_when_warnings_or_pin2vec():
    stream = io.StringIO()
    progress = ComponentProgress(stream)
    _feed(progress, "thousands of Beam lines")
    _feed(progress, "disk almost full\nsecond line", level=logging.WARNING)
    _feed(progress, "pushed version 3", name="pin2vec.pusher")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("warning: disk almost full")
    assert lines[1].endswith("info: pushed version 3")
