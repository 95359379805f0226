"""What the server needs from a model: a loader per model name, and the loaded version it makes.

A model is pluggable: `ModelLoader` says whether a version directory is complete and loads it into a
`Servable`; the registry, the version policy and both front ends know nothing else about it. To serve a new
model (say a blended candidates table under `<base>/blend/<version>/`), write a loader and register it.

A servable may also define `answer_proto(signature_name, inputs, outputs) -> int | None`: a gRPC request
answered straight from its TensorProtos into the response's `outputs` (returning the rows answered), for the
request shapes where it knows a cheaper way than `submit`; None leaves the request to `submit`. gRPC's cost
per request is mostly Python's, so skipping numpy and the generic checks for the usual request shows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from typing import Protocol

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2

Tensors = dict[str, np.ndarray]


class Servable(Protocol):
    """One loaded version of one model."""

    version: int
    directory: str

    @property
    def signature_defs(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        """Signatures as TF Serving publishes them (names, dtypes, shapes, method)."""

    def optional_inputs(self, signature_name: str) -> frozenset[str]:
        """Inputs of the signature that a request may leave out."""

    def submit(self, signature_name: str, inputs: Tensors) -> concurrent.futures.Future | asyncio.Future:
        """Starts a prediction on decoded, named inputs; the future's result is the named outputs.

        Called on the server's event loop. Quick work may run there (an asyncio future, not timed out: a
        timer cannot interrupt the loop); slow work goes to a thread (a concurrent future, which gets the
        request's timeout). Raises (or fails the future with) `ServingError` for a request this
        servable cannot answer.
        """

    def close(self) -> None:
        """Releases threads and memory; called once no request holds this version any more."""


class ModelLoader(Protocol):
    """Knows one model's on-disk version format."""

    name: str

    def missing_files(self, version_dir: str) -> list[str]:
        """Files a complete version must have that `version_dir` lacks; empty when complete."""

    def load(self, version_dir: str, version: int) -> Servable:
        """The loaded version; raises with a reason when the directory holds a broken model."""
