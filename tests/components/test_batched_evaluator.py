"""The Evaluator's executor batches its input by byte size while it runs, and leaves absl flags as found."""

from __future__ import annotations

import pytest
from absl import flags
from tfx_bsl.coders import batch_util

from components.batched_evaluator.executor import byte_size_batching


def _adaptive() -> bool:
    return batch_util.GetBatchElementsKwargs(None)["min_batch_size"] == 1


def test_sources_built_inside_batch_by_byte_size_and_flags_are_restored():
    was_parsed = flags.FLAGS.is_parsed()
    assert _adaptive()
    with byte_size_batching():
        kwargs = batch_util.GetBatchElementsKwargs(None)
        assert kwargs["min_batch_size"] == kwargs["max_batch_size"] > 1_000_000  # bytes, not records
        assert "element_size_fn" in kwargs
    assert _adaptive()
    assert flags.FLAGS.is_parsed() == was_parsed


def test_flags_are_restored_when_the_evaluation_fails():
    with pytest.raises(RuntimeError, match="boom"), byte_size_batching():
        raise RuntimeError("boom")
    assert _adaptive()
