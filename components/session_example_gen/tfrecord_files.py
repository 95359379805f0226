"""Serialized records -> TFRecord framing and gzip TFRecord files, through Beam's fileio.WriteToFiles.

Why not `beam.io.WriteToTFRecord`: it takes one element per record, and Beam's per-element bookkeeping then
costs more than the rest of SessionExampleGen on a log of tens of millions of pairs. Here one element is the
already framed bytes of a batch of users' records (`frame_records`: one numpy gather, a CRC call per
record), written as they are. The framing is TFRecord's: length, masked CRC32C of the length,
data, masked CRC32C of the data (little endian).
"""

from __future__ import annotations

import gzip
import itertools
import struct
from collections.abc import Iterable

import google_crc32c
import numpy as np
from apache_beam.io import fileio
from apache_beam.options.value_provider import StaticValueProvider

from components.session_example_gen.pair_example import gather

_MASK_DELTA = 0xA282EAD8


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)


def frame(records: Iterable[bytes]) -> bytes:
    """Records in TFRecord framing, concatenated."""
    parts = []
    for record in records:
        length = struct.pack("<Q", len(record))
        parts += (length, _masked_crc(length), record, _masked_crc(record))
    return b"".join(parts)


def frame_records(records: np.ndarray, offsets: np.ndarray) -> bytes:
    """`frame` of the records records[offsets[i] : offsets[i + 1]] (uint8 array, n + 1 offsets)."""
    n = len(offsets) - 1
    if n <= 0:
        return b""
    data = records.tobytes()
    bounds = offsets.tolist()
    crc = np.array([google_crc32c.value(data[a:b]) for a, b in itertools.pairwise(bounds)], np.uint64)
    masked = ((((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF).astype("<u4")
    distinct, header_piece = np.unique(np.diff(offsets), return_inverse=True)
    headers = b"".join(
        (length := struct.pack("<Q", size)) + _masked_crc(length) for size in distinct.tolist()
    )
    # One pool: the 12-byte headers, then the records, then the 4-byte CRCs; three segments per record.
    pool = np.concatenate([np.frombuffer(headers, np.uint8), records, masked.view(np.uint8)])
    record_base, crc_base = len(headers), len(headers) + len(records)
    starts = np.stack(
        [header_piece * 12, record_base + offsets[:-1], crc_base + 4 * np.arange(n)], axis=1
    ).ravel()
    lengths = np.stack([np.full(n, 12), np.diff(offsets), np.full(n, 4)], axis=1).ravel()
    return gather(pool, starts, lengths).tobytes()


class GzipTFRecordSink(fileio.FileSink):
    """A FileSink whose elements are framed records (`frame_records`), written as one gzip TFRecord file."""

    def open(self, fh) -> None:
        self._gzip = gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6)

    def write(self, framed: bytes) -> None:
        self._gzip.write(framed)

    def flush(self) -> None:
        self._gzip.close()  # writes the gzip trailer; fileio closes the file itself


def write_framed_records(path: str, prefix: str, temp_directory: str) -> fileio.WriteToFiles:
    """The transform: files `<path>/<prefix>-*.gz`, temporary files under `temp_directory`."""
    return fileio.WriteToFiles(
        path=path,
        file_naming=fileio.default_file_naming(prefix, ".gz"),
        temp_directory=StaticValueProvider(str, temp_directory),
        sink=lambda destination: GzipTFRecordSink(),
    )
