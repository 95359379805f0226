"""The index models (`pin2vec`, `pin2vec_similar`): a pushed ScaNN index served as a TF Serving signature.

Every related-items model, the candidate tables too, answers with this signature, so `related` (the model a
client calls by default) can answer from whichever source the last push chose.

    serving_default
      inputs   item_ids      DT_STRING [n]      raw item ids
               k             DT_INT32  [] or [n] neighbours per id (optional; default `default_k`)
      outputs  related_ids   DT_STRING [n, K]   best first; K = the largest k asked
               scores        DT_FLOAT  [n, K]   the index's score (cosine similarity, or the next-engagement
                                                  inner product for `pin2vec`)
               distances     DT_FLOAT  [n, K]   cosine distance between the two items' embeddings: the
                                                  reranker's embedding distance
               in_vocabulary DT_BOOL   [n]      False: the id is not in the index, its row is all padding
               source        DT_STRING [n]      the source that answered each id ("" for padding): the
                                                  model's own, or for `related` the fallback that did
                                                  (formats/coldstart.py)

Padding (unknown ids, or slots past a row's own k) is id "", score -1 and distance 2: the farthest possible.
A request is answered on the server's event loop as soon as it is submitted: one index search of its ids.
(Batching requests across the loop was measured and dropped: grpc.aio hands the server one new RPC per loop
iteration, so batches averaged 1.1 requests while each request paid an extra loop iteration, and ScaNN's
cost per query is the same in a batch of 1 as of 64.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from formats import index_files
from formats.index_searcher import PAD_ID, PAD_SCORE, RelatedItemsSearcher
from serving.errors import Code, ServingError
from serving.signatures import signature_def
from serving.tensors import one_value

SIGNATURE = "serving_default"
IDS_INPUT = "item_ids"
K_INPUT = "k"
REQUIRED_FILES = (
    index_files.METADATA_FILE,
    index_files.ITEM_IDS_FILE,
    index_files.EMBEDDINGS_FILE,
    os.path.join(index_files.SCANN_DIR, "scann_assets.pbtxt"),
)


@dataclasses.dataclass(frozen=True)
class RelatedSettings:
    """Bounds on what one request may ask of the index."""

    max_k: int = 100
    default_k: int = 10

    def __post_init__(self):
        for name in ("max_k", "default_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RelatedSettings.{name} must be an integer >= 1; got {value!r}")
        if self.default_k > self.max_k:
            raise ValueError(f"RelatedSettings.default_k={self.default_k} exceeds max_k={self.max_k}")


_OPTIONAL_INPUTS = frozenset({K_INPUT})
_STRINGS = frozenset({types_pb2.DT_STRING})
_INTEGERS = frozenset({types_pb2.DT_INT32, types_pb2.DT_INT64})


@dataclasses.dataclass(frozen=True)
class _Request:
    item_ids: list[str]
    ks: list[int]


def related_signature() -> meta_graph_pb2.SignatureDef:
    return signature_def(
        inputs={IDS_INPUT: ("DT_STRING", [-1]), K_INPUT: ("DT_INT32", [-1])},
        outputs={
            "related_ids": ("DT_STRING", [-1, -1]),
            "scores": ("DT_FLOAT", [-1, -1]),
            "distances": ("DT_FLOAT", [-1, -1]),
            "in_vocabulary": ("DT_BOOL", [-1]),
            "source": ("DT_STRING", [-1]),
        },
    )


def answer_rows(searcher, requests: Sequence[_Request]) -> list[dict[str, np.ndarray]]:
    """Every request's outputs from one search per distinct k over the batch's ids.

    `searcher` answers `.related(ids, k)`, or faster `.related_arrays(ids, k)`; it may also define
    `.distances(item_id, related_ids)` (default: 1 - score, the cosine distance when scores are cosine
    similarities).
    """
    distances_of = getattr(searcher, "distances", None)
    if distances_of is None and hasattr(searcher, "related_arrays"):
        return _answer_from_arrays(searcher, requests)
    wanted: dict[int, set[str]] = defaultdict(set)
    for request in requests:
        for item_id, k in zip(request.item_ids, request.ks, strict=True):
            wanted[k].add(item_id)
    found = {k: searcher.related(sorted(ids), k) for k, ids in wanted.items()}
    return [_outputs(request, found, distances_of) for request in requests]


def _answer_from_arrays(searcher, requests: Sequence[_Request]) -> list[dict[str, np.ndarray]]:
    """answer_rows with whole-batch arrays: one search per k, each request's rows sliced out of it."""
    ids_by_k: dict[int, list[str]] = defaultdict(list)
    for request in requests:
        if len(request.ks) == 1:  # the common shape: one id
            ids_by_k[request.ks[0]].append(request.item_ids[0])
        else:
            for item_id, k in zip(request.item_ids, request.ks, strict=True):
                ids_by_k[k].append(item_id)
    found = {}
    for k, ids in ids_by_k.items():
        arrays = searcher.related_arrays(ids, k)
        found[k] = (arrays.ids, arrays.scores, 1.0 - arrays.scores, arrays.known)
    next_row = dict.fromkeys(found, 0)
    outputs = []
    for request in requests:
        ks = request.ks
        width = max(ks, default=0)
        if ks.count(width) == len(ks) and ks:  # one k for every row: a slice of that k's arrays
            start = next_row[width]
            end = next_row[width] = start + len(ks)
            related_ids, scores, distances, known = (array[start:end] for array in found[width])
            outputs.append(
                {"related_ids": related_ids, "scores": scores, "distances": distances, "in_vocabulary": known}
            )
            continue
        n = len(ks)
        output = {
            "related_ids": np.full((n, width), PAD_ID, dtype=object),
            "scores": np.full((n, width), PAD_SCORE, dtype=np.float32),
            "distances": np.full((n, width), 1.0 - PAD_SCORE, dtype=np.float32),
            "in_vocabulary": np.zeros(n, dtype=np.bool_),
        }
        for row, k in enumerate(ks):
            source = next_row[k]
            next_row[k] += 1
            related_ids, scores, distances, known = found[k]
            output["related_ids"][row, :k] = related_ids[source]
            output["scores"][row, :k] = scores[source]
            output["distances"][row, :k] = distances[source]
            output["in_vocabulary"][row] = known[source]
        outputs.append(output)
    return outputs


def _outputs(request: _Request, found: dict[int, dict], distances_of=None) -> dict[str, np.ndarray]:
    n = len(request.item_ids)
    width = max(request.ks, default=0)
    related_ids = np.full((n, width), PAD_ID, dtype=object)
    scores = np.full((n, width), PAD_SCORE, dtype=np.float32)
    distances = np.full((n, width), 1.0 - PAD_SCORE, dtype=np.float32)
    known = np.zeros(n, dtype=np.bool_)
    for row, (item_id, k) in enumerate(zip(request.item_ids, request.ks, strict=True)):
        neighbours = found[k][item_id]
        if neighbours is None:
            continue
        known[row] = True
        for column, (other, score) in enumerate(neighbours):
            related_ids[row, column] = index_files.encode_item_id(other)
            scores[row, column] = score
        m = len(neighbours)
        if distances_of is None:
            distances[row, :m] = 1.0 - scores[row, :m]
        elif m:
            distances[row, :m] = distances_of(item_id, [other for other, _ in neighbours])
    return {
        "related_ids": related_ids,
        "scores": scores,
        "distances": distances,
        "in_vocabulary": known,
    }


def _row_tensor(proto, dtype: int, width: int):
    """`proto`, empty, made a [1, width] tensor of `dtype`; its values are the caller's to write."""
    proto.dtype = dtype
    dims = proto.tensor_shape.dim
    dims.add().size = 1
    dims.add().size = width
    return proto


class RelatedServable:
    """One pushed index version behind a batching worker."""

    def __init__(
        self, directory: str, version: int, settings: RelatedSettings, searcher=None, source: str = ""
    ):
        """`searcher`: has .related(ids, k), .max_k and .num_items, and may have .sources(ids) (the source
        answering each id, "" for none); default: the directory's index. `source`: the name each known id's
        `source` output gives when the searcher has no .sources."""
        self.directory = directory
        self.version = version
        self.source = source
        self._source_bytes = source.encode("utf-8")
        self._settings = settings
        self._searcher = searcher or RelatedItemsSearcher(directory, max_k=settings.max_k)
        self._closed = False
        self._signatures = {SIGNATURE: related_signature()}

    @property
    def signature_defs(self):
        return self._signatures

    @property
    def num_items(self) -> int:
        return self._searcher.num_items

    @property
    def max_k(self) -> int:
        return self._searcher.max_k

    def answer(self, request: _Request) -> dict[str, np.ndarray]:
        """The outputs for a checked request (see `parse`), `source` included."""
        (outputs,) = answer_rows(self._searcher, [request])
        sources_of = getattr(self._searcher, "sources", None)
        if sources_of is not None:
            names = [name.encode("utf-8") for name in sources_of(request.item_ids)]
            outputs["source"] = np.array(names, dtype=object).reshape(len(request.item_ids))
        else:
            outputs["source"] = np.where(outputs["in_vocabulary"], self._source_bytes, b"").astype(object)
        return outputs

    def parse(self, inputs: dict[str, np.ndarray]) -> _Request:
        """The request's ids and one k per id, checked against this version's bounds."""
        return self._request(inputs)

    def optional_inputs(self, signature_name: str) -> frozenset[str]:
        return _OPTIONAL_INPUTS

    def submit(self, signature_name: str, inputs: dict[str, np.ndarray]) -> asyncio.Future:
        """Must be called on the server's event loop; searches there and then, so the future it gives is
        already done (awaiting it does not suspend the request)."""
        if self._closed:
            raise RuntimeError(f"related version {self.version} is closed")
        outputs = self.answer(self._request(inputs))
        future = asyncio.get_running_loop().create_future()
        future.set_result(outputs)
        return future

    def answer_proto(self, signature_name: str, inputs, outputs) -> int | None:
        """The usual request (one id; `k` left out or one number) read from its TensorProtos and answered
        into the response's, the same answer `submit` gives with less work per request; None for any other
        request, which then goes through `submit` (and gets its error there, if it has one)."""
        if self._closed or signature_name not in ("", SIGNATURE) or IDS_INPUT not in inputs:
            return None
        raw_id = one_value(inputs[IDS_INPUT], _STRINGS)
        if raw_id is None:
            return None
        if len(inputs) == 1:
            k = self._settings.default_k
        elif len(inputs) == 2 and K_INPUT in inputs:
            k = one_value(inputs[K_INPUT], _INTEGERS)
        else:
            return None
        if k is None or not 1 <= k <= self._searcher.max_k or hasattr(self._searcher, "sources"):
            return None
        found = self._searcher.related_row(index_files.decode_item_id(raw_id), k)
        related_ids, scores = found or ([PAD_ID] * k, [PAD_SCORE] * k)
        scores = np.array(scores, dtype=np.float32)
        # What fill_proto writes for these [1, k] outputs, without its generic steps.
        _row_tensor(outputs["related_ids"], types_pb2.DT_STRING, k).string_val.extend(related_ids)
        _row_tensor(outputs["scores"], types_pb2.DT_FLOAT, k).tensor_content = scores.tobytes()
        _row_tensor(outputs["distances"], types_pb2.DT_FLOAT, k).tensor_content = (1.0 - scores).tobytes()
        known = outputs["in_vocabulary"]
        known.dtype = types_pb2.DT_BOOL
        known.tensor_shape.dim.add().size = 1
        known.tensor_content = b"\x01" if found else b"\x00"
        source = outputs["source"]
        source.dtype = types_pb2.DT_STRING
        source.tensor_shape.dim.add().size = 1
        source.string_val.append(self._source_bytes if found else b"")
        return 1

    def _request(self, inputs: dict[str, np.ndarray]) -> _Request:
        ids = inputs[IDS_INPUT]
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if ids.ndim != 1:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"'{IDS_INPUT}' must be a list of ids (shape [n]); got shape {ids.shape}",
            )
        n = ids.shape[0]
        ks = inputs.get(K_INPUT)
        if ks is None:
            ks = np.full(n, self._settings.default_k)
        elif ks.ndim == 0 or ks.shape == (1,):
            ks = np.full(n, ks.reshape(-1)[0])
        elif ks.shape != (n,):
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"'{K_INPUT}' must be one number or one per id (shape [{n}]); got shape {list(ks.shape)}",
            )
        max_k = self._searcher.max_k
        bad = ks[(ks < 1) | (ks > max_k)]
        if bad.size:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"'{K_INPUT}' must be in [1, {max_k}] for this index; got {int(bad[0])}",
            )
        decode = index_files.decode_item_id
        return _Request([decode(raw) for raw in ids.tolist()], ks.tolist())

    def close(self) -> None:
        self._closed = True


class RelatedLoader:
    """Loads `<base>/<name>/<version>/` index directories (see formats/index_files.py): `pin2vec` (what the
    network predicts next) or `pin2vec_similar` (cosine neighbours)."""

    def __init__(self, name: str, settings: RelatedSettings | None = None):
        self.settings = settings or RelatedSettings()
        self.name = name

    def missing_files(self, version_dir: str) -> list[str]:
        return [name for name in REQUIRED_FILES if not os.path.isfile(os.path.join(version_dir, name))]

    def load(self, version_dir: str, version: int) -> RelatedServable:
        return RelatedServable(version_dir, version, self.settings, source=self.name)
