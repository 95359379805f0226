"""ScaNN's search extension, loaded without TensorFlow's Python side.

`import scann` imports TensorFlow (10-40 s) only because its C++ extension links TensorFlow's framework
library. Serving a built index needs just that extension and the assets proto: this loads the library with
`ctypes` and both modules from their files in 0.1-0.2 s, so `pin2vec related --source pin2vec` and the servers
start without TensorFlow. Building an index still goes through the `scann` package.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from types import ModuleType

import numpy as np

# The names ScaNN's own package gives these modules: loading them under the same names lets a later
# `import scann` in the same process reuse them instead of registering the extension's types twice.
EXTENSION_MODULE = "scann_pybind"
ASSETS_MODULE = "scann.scann_ops.scann_assets_pb2"


def _package_dir(package: str) -> str:
    """The installed package's directory, found without running its __init__."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the ScaNN index needs the `{package}` package (pinned in pyproject.toml); install the "
            "project's dependencies, e.g. `make setup`"
        )
    return next(iter(spec.submodule_search_locations))


def _module_from_file(name: str, path: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if not os.path.isfile(path):
        raise ImportError(f"{path} is missing: the installed ScaNN is not the layout this project pins")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def extension() -> ModuleType:
    """ScaNN's pybind extension (`ScannNumpy`), with TensorFlow's framework library loaded first."""
    if EXTENSION_MODULE not in sys.modules:
        framework = os.path.join(_package_dir("tensorflow"), "libtensorflow_framework.so.2")
        ctypes.CDLL(framework, mode=ctypes.RTLD_GLOBAL)
    scann_dir = _package_dir("scann")
    return _module_from_file(
        EXTENSION_MODULE, os.path.join(scann_dir, "scann_ops", "cc", "python", "scann_pybind.so")
    )


def assets_proto() -> ModuleType:
    """`scann_assets_pb2`, which lists a serialized searcher's files."""
    return _module_from_file(
        ASSETS_MODULE, os.path.join(_package_dir("scann"), "scann_ops", "scann_assets_pb2.py")
    )


PARALLEL_BATCH = 256  # ScaNN's own default for search_batched_parallel


class Searcher:
    """The calls serving makes on a loaded searcher, with ScaNN's keyword options (-1: the built default)."""

    def __init__(self, native):
        self._native = native

    def search(self, query, final_num_neighbors=None, pre_reorder_num_neighbors=None, leaves_to_search=None):
        return self._native.search(
            np.asarray(query, dtype=np.float32),
            _or_default(final_num_neighbors),
            _or_default(pre_reorder_num_neighbors),
            _or_default(leaves_to_search),
        )

    def search_batched(
        self,
        queries,
        final_num_neighbors=None,
        pre_reorder_num_neighbors=None,
        leaves_to_search=None,
        parallel=False,
    ):
        """`parallel`: ScaNN's own threads over the batch (the same answers); off by default, as the servers
        parallelise across requests. A catalogue-wide search turns it on."""
        return self._native.search_batched(
            np.asarray(queries, dtype=np.float32),
            _or_default(final_num_neighbors),
            _or_default(pre_reorder_num_neighbors),
            _or_default(leaves_to_search),
            bool(parallel),
            PARALLEL_BATCH if parallel else 0,  # queries per thread's turn; 0 would divide by zero
        )


def _or_default(value) -> int:
    return -1 if value is None else int(value)


def load_searcher(scann_dir: str, assets_text: str) -> Searcher:
    """A searcher from ScaNN's serialization in `scann_dir`, given its (re-rooted) assets list as text."""
    return Searcher(extension().ScannNumpy(scann_dir, assets_text))
