"""The run report's provenance: what it was computed from (input, fingerprint, row counts), with which
settings and code, for which version, and when. A reader decides whether to trust the figures from this block,
so it is written into evaluation.json with them and rendered at the top of the report.

Pure functions over plain values: the executor reads the artifacts' custom properties and the settings the
pipeline passed in, and hands them over here.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

CANDIDATE_VERSION = (
    "candidate: this report is written before the push; the end-of-run summary of `pin2vec run` names the "
    "version that was pushed (or why nothing was)"
)
NOT_RECORDED = "not recorded"

# Row counts in the order a reader follows the data, with the words the report uses for them. Counts the
# artifacts record beyond these are shown after them under their own names.
COUNT_LABELS = {
    "rows_read": "rows read",
    "events_read": "events read",
    "bad_rows": "bad rows (quarantined)",
    "dropped_rare_item_events": "events of rare items dropped",
    "dropped_repeated_events": "repeated events collapsed",
    "dropped_short_sessions": "short sessions dropped",
    "sessions": "sessions",
    "pairs_train": "training pairs",
    "pairs_eval": "validation pairs",
    "pairs_test": "test pairs",
    "pairs_rerank": "rerank pairs",
    "vocabulary": "vocabulary (items indexed)",
    "embedding_dimensions": "embedding dimensions",
    "cooccurrence_items": "items with co-occurrences",
    "board_items": "items with board co-occurrences",
    "catalogue_size": "catalogue (items of any source)",
}


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings (dataclasses.asdict of PipelineSettings) -> {"trainer.epochs": 25, ...}, sorted by
    name; lists and tuples become comma-separated text ("(none)" when empty) so every value is one cell."""
    flat: dict[str, Any] = {}
    for key in sorted(settings):
        value, name = settings[key], f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = ", ".join(str(v) for v in value) if value else "(none)"
        else:
            flat[name] = value
    return flat


def utc_now() -> str:
    """The report's date: UTC, to the second, ISO 8601."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_provenance(
    *,
    settings: Mapping[str, Any] | None,
    counts: Mapping[str, int | None],
    input_fingerprint: str,
    code: Mapping[str, Any],
    written_at: str,
    pushed_version: int | None = None,
) -> dict[str, Any]:
    """The provenance section of evaluation.json.

    `settings`: the pipeline's settings (nested dicts), or None when the pipeline did not pass them (the
    inputs are then "not recorded"); `counts`: row and item counts by name (None: not recorded, left out);
    `code`: git_commit and git_dirty, or package_version, and evaluator_version; `pushed_version`: known only
    when the report is rendered after the push, else the report calls itself a candidate.
    """
    settings = settings or {}
    source = settings.get("source") or {}
    collections = settings.get("collections") or {}
    inputs = [
        {
            "name": "engagement log",
            "path": source.get("path") or NOT_RECORDED,
            "fingerprint": input_fingerprint or NOT_RECORDED,
        }
    ]
    if collections:
        inputs.append({"name": "collections (boards)", "path": collections.get("path") or NOT_RECORDED})
    if settings.get("titles_path"):
        inputs.append({"name": "titles", "path": settings["titles_path"]})
    known = [name for name in COUNT_LABELS if counts.get(name) is not None]
    others = sorted(name for name, value in counts.items() if name not in COUNT_LABELS and value)
    return {
        "written_at": written_at,
        "inputs": inputs,
        "counts": {name: int(counts[name]) for name in [*known, *others]},
        "settings": flatten_settings(settings) if settings else {},
        "code": dict(code),
        "version": (
            {"pushed": int(pushed_version)}
            if pushed_version is not None
            else {"pushed": None, "note": CANDIDATE_VERSION}
        ),
    }


def code_description(code: Mapping[str, Any]) -> str:
    """One line naming the code: the git commit (marked when tracked files had changes) or, outside a git
    checkout, the hash of the package's sources."""
    if code.get("git_commit"):
        dirty = " with uncommitted changes" if code.get("git_dirty") else ""
        text = f"git commit {code['git_commit'][:12]}{dirty}"
    elif code.get("package_version"):
        text = f"package code version {code['package_version']} (not a git checkout)"
    else:
        text = NOT_RECORDED
    if code.get("evaluator_version"):
        text += f"; evaluator code {code['evaluator_version']}"
    return text


def version_description(version: Mapping[str, Any] | None) -> str:
    if version and version.get("pushed") is not None:
        return f"pushed as version {version['pushed']}"
    return (version or {}).get("note") or CANDIDATE_VERSION


def count_label(name: str) -> str:
    return COUNT_LABELS.get(name, name.replace("_", " "))
