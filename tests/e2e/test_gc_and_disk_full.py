"""`pin2vec gc` on a real output directory, and runs on a disk too small for them.

gc: two runs (the second with --no-cache: every artifact new, a second pushed version), `gc --keep 1`, then a
rerun that still reuses every step from the cache and serving that still answers.
Disk full: the output directory on tmpfs filesystems of three sizes (root only; skipped elsewhere), each too
small at another step; the error names the path and the space left, and no version is partly published."""

import json
import os
import subprocess
import sys

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from formats import push_records
from pipeline.config import RunSettings
from pipeline.disk_full import human_bytes
from pipeline.metadata import connection_config
from tests.e2e.tiny_log import write_tiny_log

pytestmark = pytest.mark.e2e
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pin2vec(*argv, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *argv], cwd=REPO, capture_output=True, text=True, **kwargs
    )


def _run(log, output_dir, *extra):
    return _pin2vec(
        "run", "--events", str(log), "--output-dir", str(output_dir), "--min-count", "3", "--epochs", "2",
        "--embedding-dim", "16", "--negatives", "8", "--batch-size", "64", "--min-index-recall", "0.5",
        "--beam-arg=--runner=DirectRunner", *extra,
    )  # fmt: skip


def test_gc_keeps_what_the_next_run_and_serving_need(tmp_path):
    log, output_dir = tmp_path / "events.tsv", tmp_path / "out"
    write_tiny_log(log)
    second_settings = ("--learning-rate", "0.02")  # a second model and version; earlier steps cached
    for extra in ((), second_settings):
        done = _run(log, output_dir, *extra)
        assert done.returncode == 0, done.stderr[-3000:]
    serving = output_dir / "serving"
    first, second = sorted(push_records.committed(str(serving)))

    listed = _pin2vec("gc", "--output-dir", str(output_dir), "--keep", "1", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "would delete" in listed.stdout and f"serving version {first}" in listed.stdout
    assert sorted(push_records.committed(str(serving))) == [first, second]  # a dry run deletes nothing

    done = _pin2vec("gc", "--output-dir", str(output_dir), "--keep", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(push_records.committed(str(serving))) == [second]
    assert not any((serving / model / str(first)).exists() for model in os.listdir(serving))
    store = metadata_store.MetadataStore(connection_config(RunSettings(output_dir=str(output_dir))))
    deleted = [a for a in store.get_artifacts() if a.state == mlmd.Artifact.DELETED]
    assert deleted, done.stdout
    assert all(not os.path.exists(a.uri) for a in deleted)

    rerun = _run(log, output_dir, *second_settings)  # the newest run again: every step it needs was kept
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    output = rerun.stderr + rerun.stdout
    for step in ("SessionExampleGen", "Transform", "Trainer", "ScannIndexer"):  # what gc must not break
        finished = [
            line for line in output.splitlines() if f"  {step} done in" in line
        ]  # "[hh:mm:ss]   X done"
        assert finished and all(line.endswith("(cached)") for line in finished), (
            f"{step} was not reused from the cache:\n{output[-3000:]}"
        )
    assert sorted(push_records.committed(str(serving))) == [second]  # nothing retrained, nothing pushed
    related = _pin2vec("related", "--output-dir", str(output_dir), "--json", "--k", "3", "i1")
    assert related.returncode == 0, related.stderr
    assert json.loads(related.stdout)


def _mount_tmpfs(directory, size_kb):
    directory.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(directory)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


# Sizes from a tiny run's footprint (about 1.0 MB after ExampleGen and StatisticsGen, 1.4 MB after the
# Trainer, 2.5 MB pushed, ML Metadata and logs included): aimed at ExampleGen, the Trainer and the push.
DISK_SIZES_KB = {"example-gen": 600, "trainer": 1200, "pusher": 2100}


@pytest.mark.slow
@pytest.mark.parametrize("where", list(DISK_SIZES_KB))
def test_a_full_disk_is_named_and_nothing_is_partly_published(tmp_path, where):
    log, disk = tmp_path / "events.tsv", tmp_path / "disk"
    write_tiny_log(log)
    _mount_tmpfs(disk, DISK_SIZES_KB[where])
    try:
        output_dir = disk / "out"
        done = _run(log, output_dir)
        assert done.returncode == 1, done.stderr[-3000:]
        assert "the disk is full: could not write" in done.stderr, done.stderr[-3000:]
        assert f"free of {human_bytes(DISK_SIZES_KB[where] * 1024)} on its filesystem" in done.stderr, (
            done.stderr[-2000:]
        )
        assert "database or disk is full" not in done.stderr.splitlines()[-1]
        serving = output_dir / "serving"
        committed = push_records.committed(str(serving))
        for version, record in committed.items():  # whatever is visible is whole
            for model in record.get("models", {}):
                push_records.check_model_version(str(serving / model / str(version)))
        started = [line.split("> ")[1] for line in done.stderr.splitlines() if "] > " in line]
        print(f"{where}: {DISK_SIZES_KB[where]} KB, failed in {started[-1:]}: {done.stderr.splitlines()[-1]}")
    finally:
        subprocess.run(["umount", str(disk)], check=False)
