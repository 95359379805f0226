"""Human-sized progress for a pipeline run: one line per component, full logs in a file.

TFX, TensorFlow and Beam log thousands of lines per run. The console gets when each component starts,
ends (and whether its result came from the cache), warnings, and pin2vec's own messages; everything goes
to the run's log file for when something needs a closer look.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator

from absl import logging as absl_logging

from pipeline.memory_release import release_memory_after

# Warnings from files under the project's own packages reach the console; library warnings stay in the log.
_PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_RUNNING = re.compile(r"Component (\S+) is running\.")
_FINISHED = re.compile(r"Component (\S+) is finished\.")
_CACHED = re.compile(r"A cached execution \d+ is used\.")


class ComponentProgress(logging.Handler):
    """Turns LocalDagRunner's component messages into timed one-liners on a stream, and calls
    `after_component(name)` (when given) as each component finishes."""

    def __init__(self, stream=None, after_component: Callable[[str], None] | None = None):
        super().__init__(level=logging.INFO)
        self.stream = stream or sys.stderr
        self.after_component = after_component
        self.started: dict[str, float] = {}
        self.cached: set[str] = set()
        self.current: str | None = None
        self.finished: list[tuple[str, float, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if match := _RUNNING.match(message):
            self.current = match.group(1)
            self.started[self.current] = time.monotonic()
            self._print(f"> {self.current} ...")
        elif _CACHED.match(message) and self.current:
            self.cached.add(self.current)
        elif match := _FINISHED.match(message):
            name = match.group(1)
            seconds = time.monotonic() - self.started.get(name, time.monotonic())
            was_cached = name in self.cached
            self.finished.append((name, seconds, was_cached))
            self._print(f"  {name} done in {seconds:.1f}s{' (cached)' if was_cached else ''}")
            if self.after_component is not None:
                self.after_component(name)
        elif self._is_for_people(record):
            self._print(f"  {record.levelname.lower()}: {message.splitlines()[0][:300]}")

    @staticmethod
    def _is_for_people(record: logging.LogRecord) -> bool:
        """Errors, pin2vec's own messages, and warnings raised by pin2vec code (not by its libraries)."""
        if record.levelno >= logging.ERROR or record.name.startswith("pin2vec"):
            return True
        path = os.path.abspath(record.pathname)
        return record.levelno >= logging.WARNING and path.startswith(_PROJECT) and "site-packages" not in path

    def _print(self, text: str) -> None:
        self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
        self.stream.flush()


@contextlib.contextmanager
def run_logging(log_file: str, verbose: bool = False) -> Iterator[ComponentProgress]:
    """For the block: all logs to `log_file` and a progress view (or everything, when verbose) to stderr.
    The root logger's handlers and level are restored afterwards, so a run leaves no handler behind writing
    to a stream that may be gone (a caller's, or a test's captured stderr)."""
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logging.use_python_logging(quiet=True)
    root = logging.getLogger()
    previous_handlers, previous_level = list(root.handlers), root.level
    root.setLevel(logging.INFO)
    for handler in previous_handlers:
        root.removeHandler(handler)
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Verbose: everything on the console, and the progress view still counts components, quietly.
    progress = ComponentProgress(io.StringIO() if verbose else None, after_component=release_memory_after)
    added = [to_file, progress] + ([logging.StreamHandler(sys.stderr)] if verbose else [])
    for handler in added:
        root.addHandler(handler)
    try:
        yield progress
    finally:
        for handler in added:
            root.removeHandler(handler)
        to_file.close()
        for handler in previous_handlers:
            root.addHandler(handler)
        root.setLevel(previous_level)
