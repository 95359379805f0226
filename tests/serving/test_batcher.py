"""DynamicBatcher: concurrent submissions share a batch; failures reach every caller; close drains."""

from __future__ import annotations

import threading

import pytest

from serving.batcher import DynamicBatcher


def test_requests_queued_while_busy_are_answered_in_one_batch():
    gate = threading.Event()
    batches = []

    def process(requests):
        gate.wait(5)
        batches.append(list(requests))
        return [r * 10 for r in requests]

    batcher = DynamicBatcher(process, max_rows=100, name="t")
    first = batcher.submit(1, rows=1)  # the worker takes it and blocks on the gate
    while not first.running():
        pass
    rest = [batcher.submit(i, rows=1) for i in range(2, 7)]
    gate.set()
    assert [f.result(5) for f in [first, *rest]] == [10, 20, 30, 40, 50, 60]
    assert batches == [[1], [2, 3, 4, 5, 6]]
    batcher.close()


def test_batches_respect_max_rows_and_errors_reach_every_caller():
    gate = threading.Event()
    batches = []

    def process(requests):
        gate.wait(5)
        batches.append(list(requests))
        if "boom" in requests:
            raise ValueError("boom")
        return requests

    batcher = DynamicBatcher(process, max_rows=4, name="t")
    first = batcher.submit("a", rows=1)
    while not first.running():
        pass
    futures = [batcher.submit(x, rows=2) for x in ("b", "c", "boom")]
    gate.set()
    assert first.result(5) == "a" and futures[0].result(5) == "b" and futures[1].result(5) == "c"
    with pytest.raises(ValueError, match="boom"):
        futures[2].result(5)
    assert batches == [["a"], ["b", "c"], ["boom"]]
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("late", rows=1)


def test_close_answers_what_is_queued():
    batcher = DynamicBatcher(lambda requests: requests, max_rows=8, name="t")
    futures = [batcher.submit(i, rows=1) for i in range(20)]
    batcher.close()
    assert [f.result(0) for f in futures] == list(range(20))
