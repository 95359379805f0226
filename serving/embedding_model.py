"""The `embedding` model: the exported Keras SavedModel (raw ids -> 128-d vectors), run with TF in-process.

Every signature of the SavedModel is served as it is (`serving_default`: item_ids -> embedding,
in_vocabulary); unknown ids come back with `in_vocabulary` false, as the model itself answers them. The same
directory loads in stock tensorflow_model_server (docs/SERVING.md).
"""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np

from serving.errors import Code, ServingError
from serving.signatures import SERVE_TAG, saved_model_signatures

MODEL_NAME = "embedding"
# A half-copied SavedModel lacks one of these; our exports always have variables.
REQUIRED_FILES = ("saved_model.pb", os.path.join("variables", "variables.index"))


class EmbeddingServable:
    """One SavedModel version; calls run on a small thread pool (TF releases the GIL while computing)."""

    def __init__(self, directory: str, version: int, threads: int = 2):
        import tensorflow as tf

        self._tf = tf
        self.directory = directory
        self.version = version
        self._signatures = saved_model_signatures(directory)
        self._model = tf.saved_model.load(directory, tags=[SERVE_TAG])
        self._functions = {name: self._model.signatures[name] for name in self._signatures}
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix=f"embedding-{version}")

    @property
    def signature_defs(self):
        return self._signatures

    def optional_inputs(self, signature_name: str) -> frozenset[str]:
        return frozenset()

    def submit(self, signature_name: str, inputs: dict[str, np.ndarray]) -> concurrent.futures.Future:
        function = self._functions[signature_name]
        return self._pool.submit(self._call, function, inputs)

    def _call(self, function, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        try:
            outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            message = getattr(error, "message", None) or str(error)
            raise ServingError(Code.INVALID_ARGUMENT, message.strip().splitlines()[0][:500]) from error
        return {name: value.numpy() for name, value in outputs.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class EmbeddingLoader:
    """Loads `<base>/embedding/<version>/` SavedModel directories."""

    name = MODEL_NAME

    def __init__(self, threads: int = 2):
        self.threads = threads

    def missing_files(self, version_dir: str) -> list[str]:
        return [name for name in REQUIRED_FILES if not os.path.isfile(os.path.join(version_dir, name))]

    def load(self, version_dir: str, version: int) -> EmbeddingServable:
        return EmbeddingServable(version_dir, version, self.threads)
