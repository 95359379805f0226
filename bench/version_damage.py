"""The damage an operator's copy, a disk or a bad sync can do to a pushed model version, as functions that
damage a copy of a version directory in place: used by the corrupt-push tests and `make bench-faults`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from formats import candidate_table, index_files


def _cut(path: Path, keep: Callable[[bytes], bytes]) -> None:
    """`path` keeps `keep(bytes)` of its content."""
    path.write_bytes(keep(path.read_bytes()))


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _garbled(data: bytes) -> bytes:
    """Same size, same header, the rest reversed."""
    return data[:128] + bytes(reversed(data[128:]))


def _scann_dataset(directory: Path) -> Path:
    return directory / index_files.SCANN_DIR / "dataset.npy"


INDEX_DAMAGE: dict[str, Callable[[Path], None]] = {
    "item_ids.txt cut mid-line": lambda d: _cut(
        d / index_files.ITEM_IDS_FILE, lambda b: b[: len(b) // 2 + 3]
    ),
    "embeddings.npy truncated": lambda d: _cut(d / index_files.EMBEDDINGS_FILE, _half),
    "item_ids.txt short by 100 lines": lambda d: _cut(
        d / index_files.ITEM_IDS_FILE, lambda b: b"\n".join(b.split(b"\n")[100:])
    ),
    "ScaNN dataset.npy truncated to half": lambda d: _cut(_scann_dataset(d), _half),
    "ScaNN dataset.npy garbled, same size": lambda d: _cut(_scann_dataset(d), _garbled),
    "item_ids.txt reordered": lambda d: _cut(
        d / index_files.ITEM_IDS_FILE, lambda b: b"\n".join(reversed(b.split(b"\n")[:-1])) + b"\n"
    ),
    "a file missing": lambda d: (d / index_files.SCANN_DIR / "scann_config.pb").unlink(),
    "item_ids.txt missing (a file the loader waits for)": lambda d: (d / index_files.ITEM_IDS_FILE).unlink(),
}

TABLE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "neighbours.npy truncated": lambda d: _cut(d / candidate_table.NEIGHBOURS_FILE, _half),
    "scores.npy garbled, same size": lambda d: _cut(d / candidate_table.SCORES_FILE, _garbled),
    "items.txt missing": lambda d: (d / candidate_table.ITEMS_FILE).unlink(),
}
