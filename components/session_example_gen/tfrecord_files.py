"""Lists of serialized records -> gzip TFRecord files, through Beam's fileio.WriteToFiles.

Why not `beam.io.WriteToTFRecord`: it takes one element per record, and Beam's per-element bookkeeping then
costs more than the rest of SessionExampleGen on a log of tens of millions of pairs. Here one element is a
list (a user's pairs), framed in one go. The framing is TFRecord's: length, masked CRC32C of the length,
data, masked CRC32C of the data (little endian).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable

import google_crc32c
from apache_beam.io import fileio
from apache_beam.options.value_provider import StaticValueProvider

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


class GzipTFRecordSink(fileio.FileSink):
    """A FileSink whose elements are lists of records, written as one gzip TFRecord file."""

    def open(self, fh) -> None:
        self._gzip = gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6)

    def write(self, records: list[bytes]) -> None:
        self._gzip.write(frame(records))

    def flush(self) -> None:
        self._gzip.close()  # writes the gzip trailer; fileio closes the file itself


def write_record_lists(path: str, prefix: str, temp_directory: str) -> fileio.WriteToFiles:
    """The transform: files `<path>/<prefix>-*.gz`, temporary files under `temp_directory`."""
    return fileio.WriteToFiles(
        path=path,
        file_naming=fileio.default_file_naming(prefix, ".gz"),
        temp_directory=StaticValueProvider(str, temp_directory),
        sink=lambda destination: GzipTFRecordSink(),
    )
