"""evaluation.json: what the RelatedEvaluator measured and which source it chose, as written beside its run
report and pushed under `<serving>/evaluation/<version>/`. Read by serving (the default source), the run
summary and the benches, so its reading lives here, with no TFX and no TensorFlow."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

EVALUATION_FILE = "evaluation.json"
REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
_REQUIRED = ("ks", "sources", "best_source", "splits")
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
