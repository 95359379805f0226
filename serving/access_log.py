"""Structured access log: one JSON object per request, with its latency, on the `pin2vec.access` logger."""

from __future__ import annotations

import json.encoder
import logging
import threading
import time
from typing import TextIO

access_log = logging.getLogger("pin2vec.access")
_quote = json.encoder.encode_basestring_ascii  # a JSON string literal, quotes included (C, when available)


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
        self.add_line(self.format(record))

    def add_line(self, line: str) -> None:
        """Queues one formatted line (what `emit` does after formatting a record)."""
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
    latency_ms = (time.perf_counter() - started) * 1000
    line = format_line(protocol, method, model, version, status, latency_ms, time.time(), rows, peer, error)
    if access_log.propagate or access_log.filters:
        access_log.info(line)  # someone listens beyond our own handlers: the full logging path
        return
    record = None
    for handler in access_log.handlers:
        if type(handler) is BufferedLinesHandler and not handler.filters and handler.level <= logging.INFO:
            handler.add_line(line)  # the server's own handler: no LogRecord per request
        else:
            if record is None:
                record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, line, None, None)
            if record.levelno >= handler.level:
                handler.handle(record)


def format_line(
    protocol: str,
    method: str,
    model: str | None,
    version: int | None,
    status: str | int,
    latency_ms: float,
    timestamp: float,
    rows: int | None = None,
    peer: str | None = None,
    error: str | None = None,
) -> str:
    """One access line: a JSON object. Formatted by hand (what `json.dumps` of the dict would give, with
    3 decimals for the times) because it runs once per request; strings go through json's own escaping."""
    model_json = "null" if model is None else _quote(model)
    version_json = "null" if version is None else str(int(version))
    status_json = str(status) if isinstance(status, int) else _quote(status)
    line = (
        f'{{"ts":{timestamp:.3f},"protocol":{_quote(protocol)},"method":{_quote(method)},'
        f'"model":{model_json},"version":{version_json},"status":{status_json},"latency_ms":{latency_ms:.3f}'
    )
    if rows is not None:
        line += f',"rows":{int(rows)}'
    if peer:
        line += f',"peer":{_quote(peer)}'
    if error:
        line += f',"error":{_quote(error[:300])}'
    return line + "}"
