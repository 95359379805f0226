"""A full disk is said plainly: the path that could not be written and its filesystem's free space, whichever
layer (the OS, TensorFlow, ML Metadata's SQLite) ran out."""

import contextlib
import errno
import os
import shutil
import subprocess
import uuid

import pytest

from pipeline.disk_full import (
    DiskFullError,
    disk_full_message,
    find_disk_full,
    human_bytes,
    reraise_if_disk_full,
)


def _wrapped(inner: BaseException) -> RuntimeError:
    """As the local runner and TFX pass an executor's error up: wrapped, the original as the cause."""
    try:
        try:
            raise inner
        except BaseException as error:
            raise RuntimeError("Failed to execute the component: see the log") from error
    except RuntimeError as outer:
        return outer


def test_an_enospc_deep_in_the_chain_is_found_with_its_path(tmp_path):
    target = str(tmp_path / "pipeline" / "SessionExampleGen" / "examples" / "data.tfrecord")
    error = _wrapped(OSError(errno.ENOSPC, "No space left on device", target))
    link, path = find_disk_full(error)
    assert path == target and link.errno == errno.ENOSPC
    message = disk_full_message(error, str(tmp_path))
    assert f"could not write {target}" in message
    assert f"free of {human_bytes(shutil.disk_usage(tmp_path).total)} on its filesystem" in message


def test_sqlites_full_message_points_at_the_metadata_store(tmp_path):
    # What ML Metadata says when its SQLite file cannot grow.
    error = _wrapped(RuntimeError("Error when executing query: database or disk is full query: INSERT INTO"))
    message = disk_full_message(error, str(tmp_path), metadata_path=str(tmp_path / "metadata.sqlite"))
    assert f"could not write {tmp_path / 'metadata.sqlite'}" in message
    assert "database or disk is full" not in message


def test_tensorflows_text_names_the_file(tmp_path):
    error = _wrapped(Exception(f"{tmp_path}/model/variables.data; No space left on device"))
    assert f"could not write {tmp_path}/model/variables.data" in disk_full_message(error, str(tmp_path))


def test_other_errors_are_left_alone(tmp_path):
    denied = _wrapped(OSError(errno.EACCES, "Permission denied", "/x"))
    assert disk_full_message(denied, str(tmp_path)) is None
    assert disk_full_message(ValueError("bad row"), str(tmp_path)) is None
    reraise_if_disk_full(ValueError("bad row"), str(tmp_path))  # nothing raised


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_filesystem_is_named_with_its_space(small_tmpfs):
    target = small_tmpfs / "out" / f"part-{uuid.uuid4().hex}.bin"
    target.parent.mkdir()
    with pytest.raises(DiskFullError) as raised:
        try:
            with open(target, "wb") as f:
                f.write(os.urandom(2 << 20))
        except OSError as error:
            reraise_if_disk_full(error, str(small_tmpfs / "out"))
    message = str(raised.value)
    # write() names no file: the output directory it was writing under is named instead.
    assert f"could not write {small_tmpfs / 'out'} (0 B free of 1.0 MB on its filesystem)" in message


def test_an_error_that_lost_its_enospc_on_a_full_filesystem_is_still_a_full_disk(small_tmpfs):
    """SQLite can fail a COMMIT on a full disk with "cannot commit - no transaction is active": on a
    filesystem with next to nothing left that is said as a full disk, with the step's own words."""
    out = small_tmpfs / "out"
    out.mkdir()
    lost = RuntimeError("Error when executing query: cannot commit - no transaction is active query: COMMIT;")
    other = RuntimeError("Error when executing query: no such table: Artifact")
    assert disk_full_message(other, str(out)) is None  # 1 MB free: not full
    with open(out / "filler.bin", "wb") as f, contextlib.suppress(OSError):
        f.write(os.urandom(2 << 20))  # the filesystem is full now
    message = disk_full_message(lost, str(out))
    assert (
        message is not None and f"could not write {out} (the step said: Error when executing query" in message
    )
    assert "0 B free of 1.0 MB" in message
