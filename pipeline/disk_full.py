"""A full disk, said plainly: which path could not be written and how much space its filesystem has left.

A run that fills its disk fails deep inside a step (Beam writing examples, the Trainer saving, the pusher
copying) or in ML Metadata's SQLite store ("database or disk is full"), and the message that reaches the
user is that layer's. The local runner passes its failure through `disk_full_message`, which finds the
ENOSPC in the exception chain and says where and how much space is left."""

from __future__ import annotations

import errno
import os
import re
import shutil

# How the layers say it: the OS (errno 28), TensorFlow's file system, SQLite (SQLITE_FULL, via ML Metadata).
_FULL_TEXTS = ("No space left on device", "database or disk is full", "Disk quota exceeded")
_PATH_IN_TEXT = re.compile(r"(/[^\s'\",:;()\[\]]+)")


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def find_disk_full(error: BaseException) -> tuple[BaseException, str | None] | None:
    """(the exception that says the disk is full, the path it names if any), or None."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return link, link.filename if isinstance(link.filename, str) else None
        text = str(link)
        if any(marker in text for marker in _FULL_TEXTS):
            found = _PATH_IN_TEXT.search(text)
            return link, found.group(1) if found else None
    return None


def _existing(path: str) -> str:
    """`path`, or its nearest existing parent (the file that failed may never have been created)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


NEARLY_FULL_SHARE = 0.02  # below this share of its filesystem free, a failure is taken for a full disk
NEARLY_FULL_BYTES = 64 * 1024  # ... and below this much free
# SQLite rolled back a transaction after a failed write (SQLITE_FULL among the causes) and ML Metadata then
# reports only the failed COMMIT; the rollback frees the journal, so the space left afterwards is larger.
SQLITE_ROLLED_BACK = "cannot commit - no transaction is active"
ROLLED_BACK_FULL_BYTES = 1024 * 1024  # with that message, less than this free counts as full


def nearly_full(path: str, loose: bool = False) -> bool:
    """Whether the filesystem holding `path` has next to nothing left (both thresholds; `loose`: less than
    ROLLED_BACK_FULL_BYTES, for a failure whose own writes were already rolled back)."""
    usage = shutil.disk_usage(_existing(path))
    if loose:
        return usage.free < ROLLED_BACK_FULL_BYTES
    return usage.free < NEARLY_FULL_BYTES and usage.free < NEARLY_FULL_SHARE * usage.total


def disk_full_message(error: BaseException, output_dir: str, metadata_path: str | None = None) -> str | None:
    """What to tell the user when `error` comes from a full disk (None otherwise): the path that could not be
    written (the one the error names; ML Metadata's store for SQLite's "database or disk is full"; else the
    output directory), its filesystem's free and total space, and what to do."""
    found = find_disk_full(error)
    said = ""
    if found is None:
        rolled_back = SQLITE_ROLLED_BACK in str(error)
        if not nearly_full(output_dir, loose=rolled_back):
            return None
        # Some layers lose the ENOSPC on the way up (SQLite's "cannot commit - no transaction is active" after
        # a failed write): a failure on a filesystem with next to nothing left is a full disk all the same.
        found, said = (error, None), f" (the step said: {str(error).splitlines()[0][:200]})"
    link, path = found
    if path is None:
        sqlite_full = "database or disk is full" in str(link)
        path = metadata_path if sqlite_full and metadata_path else output_dir
    usage = shutil.disk_usage(_existing(path))
    return (
        f"the disk is full: could not write {path}{said} ({human_bytes(usage.free)} free of "
        f"{human_bytes(usage.total)} on its filesystem). Nothing partly written is served: a version is "
        f"published whole or not at all. Free space under {_existing(output_dir)} (or choose another "
        "--output-dir) and run again: finished steps are reused from the cache."
    )


class DiskFullError(RuntimeError):
    """A run stopped by a full disk; its message says where and how much space is left."""


def reraise_if_disk_full(error: BaseException, output_dir: str, metadata_path: str | None = None) -> None:
    message = disk_full_message(error, output_dir, metadata_path)
    if message is not None:
        raise DiskFullError(message) from error
