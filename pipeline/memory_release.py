"""Hands memory back to the system between components of an in-process run.

LocalDagRunner runs every executor in the `pin2vec run` process, one after another. What a step freed stays
in the process's heap (glibc keeps freed pages for reuse), so the next heavy step starts on top of it: at 20M
events the process held 9.6 GB when the RelatedEvaluator began and peaked at 15.6 GB, where that step alone
peaks at 11.4 GB (`bench/rerun_related_evaluator.py`). After each component, ComponentProgress calls
release_memory_after(): it collects garbage, asks glibc to return its free pages (malloc_trim), and logs the
resident size before and after, so a run's log shows what each step left behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

import psutil

log = logging.getLogger(__name__)  # not "pin2vec.*": the run's log file, not its console


def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def release_memory() -> tuple[int, int]:
    """Collects garbage and returns free heap pages to the system: (resident bytes before, after)."""
    process = psutil.Process()
    before = process.memory_info().rss
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
    return before, process.memory_info().rss


def release_memory_after(component: str) -> None:
    """release_memory() once `component` has finished, with what it handed back in the run's log."""
    before, after = release_memory()
    log.info(
        "after %s: resident %.2f GB -> %.2f GB (memory handed back to the system)",
        component,
        before / 1e9,
        after / 1e9,
    )
