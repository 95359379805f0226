"""Dynamic batching on the event loop: every request submitted in one loop iteration joins one batch.

Requests that arrive together (read from their sockets in the same iteration, or while the previous batch
was being computed) are answered by one call of `process`, e.g. one batched index search, on the loop's own
thread. No thread hand-off and no waiting window: a lone request is computed at once, and under concurrency
the batches grow by themselves. Meant for work that takes well under a millisecond per row (a ScaNN search);
slow work belongs on a thread pool instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any


class LoopBatcher:
    """Calls `process(requests) -> results` (one result per request, in order) once per batch."""

    def __init__(self, process: Callable[[Sequence[Any]], Sequence[Any]], max_rows: int):
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1; got {max_rows}")
        self._process = process
        self._max_rows = max_rows
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._rows = 0
        self._scheduled = False
        self._closed = False
        self.batches = 0  # how many `process` calls: batching at work shows as batches < requests
        self.requests = 0

    def submit(self, request: Any, rows: int) -> asyncio.Future:
        """Queues `request` (`rows` rows) for the batch of this loop iteration; must run on the loop."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._pending and self._rows + rows > self._max_rows:
            self._flush()
        self._pending.append((request, future))
        self._rows += rows
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_scheduled)
        return future

    def close(self) -> None:
        """No new requests; those already queued are still answered (their flush is scheduled)."""
        self._closed = True

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self._flush()

    def _flush(self) -> None:
        batch, self._pending, self._rows = self._pending, [], 0
        live = [(request, future) for request, future in batch if not future.done()]
        if not live:
            return
        self.batches += 1
        self.requests += len(live)
        try:
            results = self._process([request for request, _ in live])
        except Exception as error:  # one bad batch fails its own requests, nothing else
            for _, future in live:
                future.set_exception(error)
            return
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)
