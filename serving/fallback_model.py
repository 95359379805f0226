"""`related` with cold start: the default source's answer per id, and for an id it lacks, the first fallback
that has one (formats/coldstart.py: cooccurrence, board, then the window's coldstart table and its popular
fallback). Same signature as every related-items model; `source` names who answered each id.

With the window's `coldstart` table among the fallbacks, every id engaged in the window is answered, so an id
none answers was never engaged: the request fails NOT_FOUND (REST 404) naming it, instead of a padded row.
Without it (a serving directory pushed before cold start), unknown ids keep their padded rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from formats import serving_layout
from formats.index_searcher import PAD_ID
from serving.errors import Code, ServingError
from serving.related_model import SIGNATURE, RelatedServable, _Request

MAX_NAMED = 5  # unknown ids quoted in an error


class FallbackServable:
    """One request's view over the default source's version and the fallbacks' (same or older versions)."""

    def __init__(self, primary: RelatedServable, fallbacks: Sequence[RelatedServable]):
        self.primary = primary
        self.fallbacks = list(fallbacks)
        self.version = primary.version
        self.directory = primary.directory
        self._closed_world = any(f.source == serving_layout.COLDSTART_MODEL for f in self.fallbacks)

    @property
    def signature_defs(self):
        return self.primary.signature_defs

    def optional_inputs(self, signature_name: str) -> frozenset[str]:
        return self.primary.optional_inputs(signature_name)

    def submit(self, signature_name: str, inputs: dict[str, np.ndarray]) -> asyncio.Future:
        outputs = self.answer(self.primary.parse(inputs))
        future = asyncio.get_running_loop().create_future()
        future.set_result(outputs)
        return future

    def answer(self, request: _Request) -> dict[str, np.ndarray]:
        outputs = self.primary.answer(request)
        missing = _unanswered(outputs)
        for fallback in self.fallbacks:
            if not missing:
                break
            rows = missing
            asked = _Request(
                [request.item_ids[r] for r in rows], [min(request.ks[r], fallback.max_k) for r in rows]
            )
            found = fallback.answer(asked)
            not_found = set(_unanswered(found))
            for position, row in enumerate(rows):
                if position in not_found:
                    continue
                k = asked.ks[position]
                for name in ("related_ids", "scores", "distances"):
                    outputs[name][row, :k] = found[name][position, :k]
                outputs["in_vocabulary"][row] = True
                outputs["source"][row] = found["source"][position]
            missing = [row for position, row in enumerate(rows) if position in not_found]
        if missing and self._closed_world:
            unknown = [request.item_ids[row] for row in missing]
            named = ", ".join(repr(item) for item in unknown[:MAX_NAMED])
            more = f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED else ""
            raise ServingError(
                Code.NOT_FOUND,
                f"unknown item id(s) {named}{more}: not engaged in the window of version {self.version}, "
                "so no source of 'related' knows them",
            )
        return outputs

    def answer_proto(self, signature_name: str, inputs, outputs) -> int | None:
        """The default source's direct answer when it knows the id; None (the general path, with fallbacks)
        otherwise."""
        answer_proto = getattr(self.primary, "answer_proto", None)
        if answer_proto is None or signature_name not in ("", SIGNATURE):
            return None
        rows = answer_proto(signature_name, inputs, outputs)
        if rows is None:
            return None
        if outputs["in_vocabulary"].tensor_content != b"\x01":
            outputs.clear()
            return None
        return rows

    def close(self) -> None:
        """The leases close the versions; a view owns nothing."""


def _unanswered(outputs: dict[str, np.ndarray]) -> list[int]:
    """Rows with no related item: unknown ids, and known ones with an empty list."""
    ids = outputs["related_ids"]
    empty = ids[:, 0] == PAD_ID if ids.shape[1] else np.ones(len(ids), dtype=bool)
    return np.flatnonzero(~outputs["in_vocabulary"] | empty).tolist()
