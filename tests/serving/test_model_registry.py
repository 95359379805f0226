"""ModelRegistry with the real loaders: version policy, and a swapped-out version kept alive for the requests
that still hold it."""

from __future__ import annotations

import asyncio
import os
import sys
import types

import numpy as np
import pytest

from serving.embedding_model import EmbeddingLoader
from serving.errors import Code, ServingError
from serving.model_registry import ModelRegistry, version_dirs
from serving.related_model import RelatedLoader
from tests.serving.conftest import ITEM_IDS, publish


async def _related(servable, item_id):
    return await servable.submit("serving_default", {"item_ids": _ids(item_id)})


def _ids(*ids):
    return np.array([i.encode() for i in ids], dtype=object)


def test_version_dirs_takes_ascii_integer_directories_only(tmp_path):
    for name in ("1", "20", ".3.tmp-x", "4a", "²"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file")
    assert version_dirs(str(tmp_path)) == {1: str(tmp_path / "1"), 20: str(tmp_path / "20")}
    assert version_dirs(str(tmp_path / "missing")) == {}


def test_a_swapped_out_version_serves_its_holders_then_closes(artifacts, tmp_path):
    base = str(tmp_path)
    registry = ModelRegistry(base, [RelatedLoader("pin2vec_similar"), EmbeddingLoader()], keep_versions=1)
    publish(artifacts.index_a, base, "pin2vec_similar", 1)
    registry.poll()
    lease = registry.acquire("pin2vec_similar")
    assert lease.servable.version == 1
    publish(artifacts.index_b, base, "pin2vec_similar", 2)
    registry.poll()
    assert [s.version for s in registry.status("pin2vec_similar")] == [2]
    with registry.acquire("pin2vec_similar") as latest:
        assert latest.version == 2
    # The request that took version 1 before the swap still gets its answer from version 1.
    answer = asyncio.run(_related(lease.servable, ITEM_IDS[5]))
    assert answer["in_vocabulary"].tolist() == [True]
    lease.release()
    with pytest.raises(RuntimeError, match="closed"):  # released by its last holder: closed
        asyncio.run(_related(lease.servable, ITEM_IDS[5]))
    with pytest.raises(ServingError) as error:
        registry.acquire("pin2vec_similar", 1)
    assert error.value.code == Code.NOT_FOUND
    registry.stop()


def test_newest_versions_are_kept_and_broken_ones_skipped(artifacts, tmp_path):
    base = str(tmp_path)
    for version in (1, 2, 3):
        publish(artifacts.index_a, base, "pin2vec_similar", version)
    os.remove(os.path.join(base, "pin2vec_similar", "3", "embeddings.npy"))  # incomplete: waits, not refused
    registry = ModelRegistry(base, [RelatedLoader("pin2vec_similar")], keep_versions=2)
    registry.poll()
    assert [s.version for s in registry.status("pin2vec_similar")] == [2, 1]
    assert registry.acquire("pin2vec_similar").servable.version == 2
    registry.stop()


class _RecordingLoader:
    """A loader that notes the GIL switch interval it loads under."""

    name = "recorded"

    def __init__(self):
        self.intervals: list[float] = []

    def missing_files(self, version_dir):
        return []

    def load(self, version_dir, version):
        self.intervals.append(sys.getswitchinterval())
        if version == 2:
            raise ValueError("a broken version")
        return types.SimpleNamespace(version=version, close=lambda: None)  # what the registry touches


def test_versions_load_under_the_loading_switch_interval_which_is_restored_after(tmp_path):
    for version in ("1", "2"):
        (tmp_path / "recorded" / version).mkdir(parents=True)
    loader = _RecordingLoader()
    before = sys.getswitchinterval()
    registry = ModelRegistry(str(tmp_path), [loader], loading_switch_interval_s=before / 4)
    registry.poll()
    assert loader.intervals == [before / 4, before / 4]  # the broken version too
    assert sys.getswitchinterval() == before
    assert [s.state for s in registry.status("recorded")] == ["END", "AVAILABLE"]
