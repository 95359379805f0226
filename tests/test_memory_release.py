"""Between components of an in-process run, freed heap goes back to the system, and the log says how much."""

import io
import logging

import pytest

from pipeline import memory_release
from pipeline.progress import ComponentProgress


def test_freed_heap_scattered_between_live_blocks_goes_back_to_the_system():
    """Blocks of 4 kB come from malloc's heap; keeping every 50th alive stops glibc from trimming it by
    itself, as the leftovers of a pipeline step do."""
    if memory_release._TRIM is None:
        pytest.skip("no glibc malloc_trim here")
    blocks = [bytes(4000) for _ in range(50_000)]  # ~200 MB
    kept = blocks[::50]
    del blocks
    before, after = memory_release.release_memory()
    assert before - after > 100e6, (before, after)
    del kept  # alive until here, so the freed blocks were scattered between live ones


def test_progress_releases_memory_after_a_finished_component_only(caplog):
    progress = ComponentProgress(io.StringIO(), after_component=memory_release.release_memory_after)
    with caplog.at_level(logging.INFO, logger=memory_release.__name__):
        for message in ("Component Transform is running.", "Component Transform is finished."):
            progress.handle(logging.LogRecord("absl", logging.INFO, __file__, 1, message, None, None))
    [record] = [r for r in caplog.records if r.name == memory_release.__name__]
    assert record.getMessage().startswith("after Transform: resident ")
