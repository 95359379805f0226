"""SessionExampleGen's input files: listing a file, directory or glob, checking headers before any work,
streaming rows in batches, and fingerprinting for the pipeline cache.

Local paths use the standard library; remote ones (gs://...) TFX's fileio, imported only when needed because
it imports TensorFlow. Rows stream batch by batch, so no function ever holds a whole log.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, NamedTuple

from components.session_example_gen.session_settings import EventSource

_EXTENSION_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet"}


class RawRow(NamedTuple):
    file: str
    line: int  # 1-based physical line (CSV/TSV/sessions) or row number (Parquet)
    row: dict[str, Any]  # column -> value; for sessions {"session": the line}


SESSION_FIELD = "session"


def _fileio():
    # TFX's fileio reaches gs:// and other remote file systems; imported late because it imports TensorFlow.
    from tfx.dsl.io import fileio

    return fileio


def _is_local(path: str) -> bool:
    return "://" not in path


class _LocalFiles:
    """The part of TFX's fileio that listing and fingerprinting use, for local paths, without TensorFlow."""

    glob = staticmethod(glob.glob)
    isdir = staticmethod(os.path.isdir)
    exists = staticmethod(os.path.exists)
    listdir = staticmethod(os.listdir)
    stat = staticmethod(os.stat)


def list_input_files(path: str) -> list[str]:
    """Sorted data files of a file, a directory (its non-hidden files, no subdirectories) or a glob.

    Local paths are listed with the standard library, remote ones (gs://...) through TFX's fileio, so that a
    mistyped local path is reported before TensorFlow is imported (tens of seconds)."""
    fileio = _LocalFiles() if _is_local(path) else _fileio()
    if any(c in path for c in "*?["):
        files, why = [str(f) for f in fileio.glob(path)], "the glob matches no data file"
    elif fileio.isdir(path):
        files = [os.path.join(path, str(n).rstrip("/")) for n in fileio.listdir(path)]
        why = "the directory is empty" if not files else "the directory holds no data file"
    elif fileio.exists(path):
        files, why = [path], "it is not a data file"
    else:
        files, why = [], "no such file or directory"
    # Hidden and marker files (.crc, _SUCCESS) and subdirectories are not data.
    files = [f for f in files if not os.path.basename(f).startswith((".", "_")) and not fileio.isdir(f)]
    if not files:
        raise FileNotFoundError(
            f"no input files at {path!r}: {why} (hidden files, _-marker files and subdirectories are not "
            "read); expected a data file, a directory of them or a glob"
        )
    return sorted(files)


def fingerprint_inputs(path: str) -> str:
    """Hash of the input files, so a pipeline cache sees new data: for local files their names and contents
    (an edit that keeps a file's size and modification time, as `cp -p`, `rsync -a` or `tar` can leave, is
    seen; about 1 s per GB, docs/BENCHMARKS.md); for remote ones (gs://...) their names, sizes and
    modification times, what the filesystem offers without reading them."""
    return fingerprint_files(list_input_files(path))


def fingerprint_files(files: Sequence[str]) -> str:
    """`fingerprint_inputs` of a given list of files (the files of the spans a pattern resolved to)."""
    local = all(_is_local(f) for f in files)
    fileio = _LocalFiles() if local else _fileio()
    digest = hashlib.sha256()
    for file in files:
        if local:
            with open(file, "rb") as f:
                content = hashlib.file_digest(f, "sha256").hexdigest()
            digest.update(f"{file}\t{content}\n".encode())
            continue
        stat = fileio.stat(file)
        size = getattr(stat, "st_size", getattr(stat, "length", 0))
        mtime = getattr(stat, "st_mtime_ns", getattr(stat, "mtime_nsec", 0))
        digest.update(f"{file}\t{size}\t{mtime}\n".encode())
    return digest.hexdigest()


def file_format(file: str, source: EventSource) -> str:
    """csv, tsv, parquet or sessions for one file, from the source's setting or the file's extension."""
    if source.sessions:
        return "sessions"
    if source.file_format != "auto":
        return source.file_format
    name = file[:-3] if file.endswith(".gz") else file
    fmt = _EXTENSION_FORMATS.get(os.path.splitext(name)[1].lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {file!r} from its extension: expected one of "
            f"{sorted(_EXTENSION_FORMATS)} (optionally + .gz), or set file_format, or sessions=True for .txt"
        )
    return fmt


class _RemoteFile(io.RawIOBase):
    """A TFX (TensorFlow) file handle as a standard binary stream, which pyarrow and gzip need."""

    def __init__(self, handle: Any):
        self._handle = handle

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._handle.seek(offset, whence)
        return self._handle.tell()

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def _open_binary(file: str) -> BinaryIO:
    if _is_local(file):
        stream: BinaryIO = open(file, "rb")  # noqa: SIM115
    else:
        stream = io.BufferedReader(_RemoteFile(_fileio().open(file, "rb")), buffer_size=1 << 20)
    if file.endswith(".gz"):
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    return stream


def _text_lines(file: str) -> Iterator[str]:
    with _open_binary(file) as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{file}: line {number} is not valid UTF-8 ({e})") from e


ROWS_PER_BATCH = 16_384  # rows parsed (and sent between Beam steps) together


class RowBatch(NamedTuple):
    """Consecutive rows of one file: `rows[i]` holds the values of `columns` found at line `lines[i]`.

    Rows travel in batches, not one by one, because per-element overhead in Beam (and a dict per row) would
    otherwise cost more than the parsing itself on logs of tens of millions of rows.
    """

    file: str
    columns: tuple[str, ...]
    lines: list[int]
    rows: list[Sequence[Any]]

    def raw(self, i: int) -> RawRow:
        """Row i as a RawRow; as csv.DictReader says, a short row's missing values are None."""
        values = self.rows[i]
        row = {column: values[k] if k < len(values) else None for k, column in enumerate(self.columns)}
        return RawRow(self.file, self.lines[i], row)


def read_row_batches(
    file: str, source: EventSource, rows_per_batch: int = ROWS_PER_BATCH
) -> Iterator[RowBatch]:
    """Streams one file as RowBatches: Parquet batch by batch, text line by line (blank CSV lines skipped)."""
    fmt = file_format(file, source)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        columns = tuple(source.columns)
        with _open_binary(file) as stream:
            line = 0
            for batch in pq.ParquetFile(stream).iter_batches(
                batch_size=rows_per_batch, columns=list(columns)
            ):
                rows = list(zip(*(batch.column(c).to_pylist() for c in columns), strict=True))
                yield RowBatch(file, columns, list(range(line + 1, line + len(rows) + 1)), rows)
                line += len(rows)
        return
    lines: list[int] = []
    rows: list[Sequence[Any]] = []
    if fmt == "sessions":
        columns: tuple[str, ...] = (SESSION_FIELD,)
        numbered: Iterator[tuple[int, Sequence[Any]]] = (
            (line, (text,)) for line, text in enumerate(_text_lines(file), start=1)
        )
    else:
        reader = csv.reader(_text_lines(file), delimiter="\t" if fmt == "tsv" else ",")
        columns = tuple(next(reader, ()))
        numbered = ((reader.line_num, row) for row in reader if row)
    for line, row in numbered:
        lines.append(line)
        rows.append(row)
        if len(rows) == rows_per_batch:
            yield RowBatch(file, columns, lines, rows)
            lines, rows = [], []
    if rows:
        yield RowBatch(file, columns, lines, rows)


def read_rows(file: str, source: EventSource) -> Iterator[RawRow]:
    """Streams one file's rows one by one (for tools; the pipeline reads RowBatches)."""
    for batch in read_row_batches(file, source):
        for i in range(len(batch.rows)):
            yield batch.raw(i)


def _header_and_first_row(file: str, fmt: str, source: EventSource) -> tuple[list[str] | None, bool]:
    """(column names or None for sessions, whether the file has a data row), reading as little as possible."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with _open_binary(file) as stream:
            parquet = pq.ParquetFile(stream)
            return list(parquet.schema_arrow.names), parquet.metadata.num_rows > 0
    lines = _text_lines(file)
    try:
        if fmt == "sessions":
            return None, any(text.strip() for text in lines)
        reader = csv.DictReader(lines, delimiter="\t" if fmt == "tsv" else ",")
        return list(reader.fieldnames or []), next(reader, None) is not None
    finally:
        lines.close()


def check_input_files(files: Sequence[str], source: EventSource) -> None:
    """Fails before any work when a file is unreadable, lacks a required column, or no file has a row."""
    has_rows = False
    for file in files:
        fmt = file_format(file, source)
        try:
            columns, rows = _header_and_first_row(file, fmt, source)
        except Exception as e:
            raise ValueError(f"cannot read {file!r} as {fmt}: {type(e).__name__}: {e}") from e
        if columns == [] and not rows:
            raise ValueError(
                f"{file!r} is empty: no header line and no rows; expected a {fmt} header naming the columns "
                f"{list(source.columns)}, then one row per event"
            )
        missing = [c for c in source.columns if c not in (columns or [])]
        if missing:
            raise ValueError(
                f"{file!r} has no column(s) {missing}: its {fmt} header is {columns}; "
                f"set user_col/item_col/time_col (and action_col/weight_col) to the names it uses"
            )
        has_rows = has_rows or rows
    if not has_rows:
        what = "line" if source.sessions else "row under the header"
        raise ValueError(
            f"no rows in the input {source.path!r}: not one {what} in {len(files)} file(s), e.g. {files[:3]}"
        )
