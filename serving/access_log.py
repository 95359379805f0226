"""Structured access log: one JSON object per request, with its latency, on the `pin2vec.access` logger."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TextIO

access_log = logging.getLogger("pin2vec.access")


class BufferedLinesHandler(logging.Handler):
    """Writes formatted records in batches: at most `max_lines` or `max_delay_s` apart, and on close.

    A write per request (what logging.StreamHandler does) costs a system call per request, which at
    thousands of requests a second shows in the latency; a batch costs one.
    """

    def __init__(self, stream: TextIO, max_lines: int = 256, max_delay_s: float = 0.5, owns_stream=False):
        super().__init__()
        self._stream = stream
        self._owns_stream = owns_stream
        self._max_lines = max_lines
        self._max_delay_s = max_delay_s
        self._lines: list[str] = []
        self._last_write = time.monotonic()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._flush_periodically, name="access-log", daemon=True)
        self._timer.start()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self.lock:
            self._lines.append(line)
            due = len(self._lines) >= self._max_lines
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self._lines = self._lines, []
            if lines:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            self._last_write = time.monotonic()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self._max_delay_s):
            if self._lines:
                self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        if self._owns_stream:
            self._stream.close()
        super().close()


def log_request(
    protocol: str,
    method: str,
    model: str | None,
    version: int | None,
    status: str | int,
    started: float,
    rows: int | None = None,
    peer: str | None = None,
    error: str | None = None,
) -> None:
    """`started` is a `time.perf_counter()` reading taken when the request arrived."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    record = {
        "ts": round(time.time(), 3),
        "protocol": protocol,
        "method": method,
        "model": model,
        "version": version,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if rows is not None:
        record["rows"] = rows
    if peer:
        record["peer"] = peer
    if error:
        record["error"] = error[:300]
    access_log.info(json.dumps(record, separators=(",", ":")))
