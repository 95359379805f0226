"""evaluation.json: what the RelatedEvaluator measured and which source it chose, as written beside its run
report and pushed under `<serving>/evaluation/<version>/`. Read by serving (the default source), the run
summary and the benches, so its reading lives here, with no TFX and no TensorFlow.

`stability` (written by runs since neighbour stability exists): how much of each item's related list survives
from the version being served to this candidate, overlap@10 (components/related_evaluator/stability_lib.py).
Its headline `overlap_at_10` is for `source` (the candidate's best source) against `served_source` (what the
served default model answers from) at `served_version`, with `buckets` (head/torso/tail) and `sources` (each
source against its own served version), and `from_served_default` (every candidate source against the served
default source's lists). When nothing was served, `overlap_at_10` is null and `reason` says why."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

EVALUATION_FILE = "evaluation.json"
REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
_REQUIRED = ("ks", "sources", "best_source", "splits")
STABILITY_KEY = "stability"
# Optional: the share of items engaged in the window that serving answers, overall and by source
# (formats/coldstart.py `coverage`); absent from runs without the coldstart table.
COVERAGE_KEY = "coverage"


@dataclass(frozen=True)
class EvaluationResult:
    """The fields every reader relies on, checked; `raw` keeps the whole document for the report."""

    best_source: str
    sources: tuple[str, ...]
    ks: tuple[int, ...]
    splits: dict[str, dict[str, Any]]  # split -> source -> metrics
    raw: dict[str, Any]

    @property
    def coverage(self) -> dict[str, Any] | None:
        return self.raw.get(COVERAGE_KEY)

    @classmethod
    def from_dict(cls, values: Any, where: str = EVALUATION_FILE) -> EvaluationResult:
        if not isinstance(values, dict):
            raise ValueError(f"{where}: expected a JSON object written by the RelatedEvaluator")
        missing = [key for key in _REQUIRED if key not in values]
        if missing:
            raise ValueError(f"{where}: missing {missing}; expected the RelatedEvaluator's evaluation.json")
        sources = tuple(values["sources"])
        if values["best_source"] not in sources:
            raise ValueError(f"{where}: best_source {values['best_source']!r} is not one of {list(sources)}")
        return cls(values["best_source"], sources, tuple(values["ks"]), values["splits"], values)


@dataclass(frozen=True)
class NeighbourOverlap:
    """One source's overlap@10 against the version being served (None: not measured, `reason` says why)."""

    source: str
    overlap_at_10: float | None
    served_version: int | None
    reason: str


def neighbour_overlap(values: dict[str, Any], source: str) -> NeighbourOverlap:
    """The stability figure that applies when serving answers from `source` after a push: what the default
    model answers now against `source`'s lists (the headline when `source` is the evaluation's best), else,
    in evaluations without that comparison, `source` against its own served version."""
    stability = values.get(STABILITY_KEY)
    if not isinstance(stability, dict):
        return NeighbourOverlap(source, None, None, "the evaluation predates neighbour stability")
    figure = (stability.get("from_served_default") or {}).get(source)
    if figure is None:
        figure = stability if stability.get("source") == source else stability.get("sources", {}).get(source)
    if figure is None:
        return NeighbourOverlap(source, None, None, f"serving holds no version of {source} to compare with")
    overlap = figure.get("overlap_at_10")
    reason = figure.get("reason") or ("" if overlap is not None else "no item has a list in both versions")
    return NeighbourOverlap(source, overlap, figure.get("served_version"), reason)


def read_evaluation(directory: str) -> EvaluationResult:
    path = os.path.join(directory, EVALUATION_FILE)
    with open(path, encoding="utf-8") as f:
        try:
            values = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error})") from error
    return EvaluationResult.from_dict(values, where=path)


def write_evaluation(directory: str, values: dict[str, Any]) -> str:
    """Writes evaluation.json through a temporary file and a rename, so no reader sees half of it."""
    EvaluationResult.from_dict(values)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, EVALUATION_FILE)
    temporary = os.path.join(directory, f".{EVALUATION_FILE}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(values, f, indent=1)
    os.replace(temporary, path)
    return path
