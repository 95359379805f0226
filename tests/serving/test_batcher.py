"""LoopBatcher: requests submitted in one event-loop iteration share one `process` call."""

from __future__ import annotations

import asyncio

import pytest

from serving.batcher import LoopBatcher


def test_requests_of_one_iteration_form_one_batch_and_a_lone_one_its_own():
    batches = []

    def process(requests):
        batches.append(list(requests))
        return [r * 10 for r in requests]

    async def main():
        batcher = LoopBatcher(process, max_rows=100)
        together = await asyncio.gather(*(batcher.submit(i, rows=1) for i in range(5)))
        alone = await batcher.submit(9, rows=1)
        return together, alone, batcher

    together, alone, batcher = asyncio.run(main())
    assert together == [0, 10, 20, 30, 40] and alone == 90
    assert batches == [[0, 1, 2, 3, 4], [9]]
    assert (batcher.batches, batcher.requests) == (2, 6)


def test_batches_respect_max_rows_and_a_failure_fails_only_its_batch():
    batches = []

    def process(requests):
        batches.append(list(requests))
        if "boom" in requests:
            raise ValueError("boom")
        return requests

    async def main():
        batcher = LoopBatcher(process, max_rows=4)
        futures = [batcher.submit(x, rows=2) for x in ("a", "b", "c", "boom")]
        return await asyncio.gather(*futures, return_exceptions=True), batcher

    results, batcher = asyncio.run(main())
    assert results[:2] == ["a", "b"]
    assert all(isinstance(r, ValueError) for r in results[2:])
    assert batches == [["a", "b"], ["c", "boom"]]
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(_submit(batcher))


async def _submit(batcher):
    return await batcher.submit("late", rows=1)


def test_close_still_answers_what_is_queued_and_skips_cancelled():
    seen = []

    def process(requests):
        seen.extend(requests)
        return requests

    async def main():
        batcher = LoopBatcher(process, max_rows=8)
        kept = batcher.submit("kept", rows=1)
        dropped = batcher.submit("dropped", rows=1)
        dropped.cancel()  # a request that timed out before its batch ran
        batcher.close()
        return await kept

    assert asyncio.run(main()) == "kept"
    assert seen == ["kept"]
