"""Serving fixtures: small real artifacts (a ScaNN index, a SavedModel with the exported model's serving
contract) published the way the RelatedPusher publishes them, and the real server on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import queue
import shutil
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from components.scann_indexer import index_lib
from components.scann_indexer.index_lib import IndexSettings
from formats import index_files, serving_layout
from serving.predict import RequestLimits
from serving.related_model import RelatedSettings
from serving.server import ServerSettings, new_event_loop, serve
from tests.tiny_embedding_model import TinyEmbeddingModel
from trainer_module import features

NUM_ITEMS = 300
DIM = 16
# Ids a vocabulary really holds: non-ASCII, spaces, bytes that are not UTF-8.
ITEM_IDS = ["café", "with space", "\udcff-not-utf8"] + [f"item-{i}" for i in range(3, NUM_ITEMS)]


def clustered_vectors(num_items: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, dim))
    return (centres[rng.integers(12, size=num_items)] + 0.3 * rng.normal(size=(num_items, dim))).astype(
        np.float32
    )


@dataclasses.dataclass(frozen=True)
class Artifacts:
    """Unpublished version directories: two indexes (different vectors) and one SavedModel."""

    index_a: str
    index_b: str
    embedding: str
    vectors_a: np.ndarray  # normalized, row i is ITEM_IDS[i]
    vectors_b: np.ndarray


def _index(directory: str, vectors: np.ndarray) -> np.ndarray:
    settings = IndexSettings()
    searcher = index_lib.build_index(vectors, settings)
    index_lib.save_index(searcher, ITEM_IDS, vectors, directory, settings, recall=1.0)
    return index_files.normalize_rows(vectors)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    root = tmp_path_factory.mktemp("artifacts")
    vectors_a = _index(str(root / "index_a"), clustered_vectors(NUM_ITEMS, DIM, seed=1))
    vectors_b = _index(str(root / "index_b"), clustered_vectors(NUM_ITEMS, DIM, seed=2))
    raw = [index_files.encode_item_id(item_id) for item_id in ITEM_IDS]
    module = TinyEmbeddingModel(raw, vectors_a)
    tf.saved_model.save(
        module,
        str(root / "embedding"),
        signatures={features.SERVING_SIGNATURE: module.serve.get_concrete_function()},
    )
    return Artifacts(
        str(root / "index_a"), str(root / "index_b"), str(root / "embedding"), vectors_a, vectors_b
    )


def publish(source: str, model_base: str, model: str, version: int) -> str:
    """Publishes like the RelatedPusher: copy to a dot-temp directory, then rename into place."""
    return serving_layout.publish_directory(source, os.path.join(model_base, model), version)


def wait_until(condition, timeout_s: float = 30.0, what: str = "the condition"):
    """`condition()`'s first truthy value, polled until `timeout_s`; AssertionError naming `what` after."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def copy_partially(source: str, target: str, skip: str) -> None:
    """A version directory copied without one of its files: a push interrupted mid-copy."""
    shutil.copytree(source, target, ignore=lambda _, names: [n for n in names if n == skip])


@dataclasses.dataclass
class RunningServer:
    rest_port: int
    grpc_port: int
    grpc_frontend: str

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


@contextlib.contextmanager
def running_server(model_base: str, loaders=None, **overrides):
    """The real server (REST + gRPC, ports picked by the OS on 127.0.0.1) on its own thread and loop;
    `loaders`: the models to serve (default: the server's own)."""
    settings = ServerSettings(
        model_base=model_base,
        rest_port=0,
        grpc_port=0,
        poll_seconds=0.1,
        shutdown_grace_s=0.5,
        limits=overrides.pop("limits", RequestLimits(max_body_bytes=64 * 1024, max_instances=64)),
        related=overrides.pop("related", RelatedSettings(max_k=50)),
        **overrides,
    )
    ready: queue.Queue = queue.Queue()
    loop = new_event_loop(settings.event_loop)
    stop_holder: list[asyncio.Event] = []

    async def main():
        stop_holder.append(asyncio.Event())
        await serve(settings, loaders, on_ready=ready.put, stop=stop_holder[0])

    def run():
        try:
            loop.run_until_complete(main())
        except BaseException as error:
            ready.put(error)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="server-under-test", daemon=True)
    thread.start()
    info = ready.get(timeout=120)
    if isinstance(info, BaseException):
        raise info
    try:
        yield RunningServer(info["rest_port"], info["grpc_port"], info["grpc_frontend"])
    finally:
        loop.call_soon_threadsafe(stop_holder[0].set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "server did not shut down"
