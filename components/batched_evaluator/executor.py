"""The stock TFX Evaluator, reading its examples in batches of fixed byte size.

By default tfx_bsl lets Beam tune the input batch size, aiming at about one second per batch including
fixed costs. A related-items model scores each batch against the whole item table, a fixed cost of one
pass over it, and the tuning then settled on batches of one or two examples: at 772k items, 17k queries
took over ten minutes instead of about one. tfx_bsl's byte-size batching (up to 20 MiB or 8,192 records
per batch) is switched on for this executor's pipeline only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from absl import flags
from tfx.components.evaluator import executor as evaluator_executor
from tfx_bsl.coders import batch_util  # noqa: F401  (defines the flag below)

BYTE_SIZE_BATCHING_FLAG = "tfxio_use_byte_size_batching"


@contextlib.contextmanager
def byte_size_batching() -> Iterator[None]:
    """tfx_bsl sources built inside the block batch by byte size; the flags are restored after."""
    parsed = flags.FLAGS.is_parsed()
    if not parsed:
        flags.FLAGS.mark_as_parsed()  # tfx_bsl reads the flag only once absl has parsed flags
    previous = flags.FLAGS[BYTE_SIZE_BATCHING_FLAG].value
    flags.FLAGS[BYTE_SIZE_BATCHING_FLAG].value = True
    try:
        yield
    finally:
        flags.FLAGS[BYTE_SIZE_BATCHING_FLAG].value = previous
        if not parsed:
            flags.FLAGS.unparse_flags()


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        with byte_size_batching():
            return super().Do(input_dict, output_dict, exec_properties)
