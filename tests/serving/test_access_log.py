"""The access log: one JSON object per request, written in batches, nothing lost at close."""

from __future__ import annotations

import io
import json
import logging
import time

from serving.access_log import BufferedLinesHandler, access_log, log_request


def test_lines_are_batched_and_flushed_on_close():
    stream = io.StringIO()
    handler = BufferedLinesHandler(stream, max_lines=3, max_delay_s=60)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    try:
        for status in (200, 404):
            log_request("rest", "POST", "related", 2, status, time.perf_counter(), rows=1, error=None)
        assert stream.getvalue() == ""  # below max_lines: still buffered
        log_request("grpc", "Predict", "related", 2, "OK", time.perf_counter(), rows=3, peer="ipv4:x")
        assert len(stream.getvalue().splitlines()) == 3  # the third line filled the batch
        log_request("grpc", "Predict", "nope", None, "NOT_FOUND", time.perf_counter(), error="x" * 500)
    finally:
        access_log.removeHandler(handler)
        handler.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["status"] for line in lines] == [200, 404, "OK", "NOT_FOUND"]
    assert all(line["latency_ms"] >= 0 and "ts" in line for line in lines)
    assert lines[2]["peer"] == "ipv4:x" and lines[2]["rows"] == 3
    assert len(lines[3]["error"]) == 300  # bounded
