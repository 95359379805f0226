"""What SessionExampleGen reads and how it splits: `EventSource` (where the log is, which columns hold what),
`SessionSettings` (sessions, window, hold-out), and their JSON codec for the component's `input_config` exec
property (never pickle). Typed and checked on construction, so a bad setting fails before any work."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from formats.settings_codec import parse_json_object, settings_from_value, settings_to_value

FILE_FORMATS = ("auto", "csv", "tsv", "parquet", "sessions")


@dataclass(frozen=True)
class SessionSettings:
    """How a log becomes sessions and pairs; the defaults follow the Pin2Vec recipe."""

    session_gap_seconds: int = 1800  # cut a user's history where consecutive engagements are further apart
    window: int = 5  # window length incl. the first item: pairs (w[0], w[1..window-1])
    min_count: int = 5  # drop items with fewer engagements (over the whole log) before sessionizing
    eval_user_share: float = 1.0  # share of users (by id hash) whose last two engagements are held out
    max_bad_share: float = 0.01  # fail the run when more than this share of input rows is malformed
    # Transitions before the validation one held out for training the reranker (0: none), from users with at
    # least `rerank_min_engagements` distinct engagements; training always keeps the first
    # rerank_min_engagements - 3 of them, so short histories still train. 2: chosen on validation among 1-3
    # by bench/sweep_rerank.py (docs/BENCHMARKS.md, sweep-rerank).
    rerank_transitions: int = 2
    rerank_min_engagements: int = 5

    def __post_init__(self) -> None:
        for name in (
            "session_gap_seconds",
            "window",
            "min_count",
            "rerank_transitions",
            "rerank_min_engagements",
        ):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool), name, value, "an integer")
        for name in ("eval_user_share", "max_bad_share"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and not isinstance(value, bool), name, value, "a number")
        _check(self.session_gap_seconds > 0, "session_gap_seconds", self.session_gap_seconds, "> 0")
        _check(self.window >= 2, "window", self.window, ">= 2 (the first item and at least one label)")
        _check(self.min_count >= 1, "min_count", self.min_count, ">= 1")
        _check(0.0 <= self.eval_user_share <= 1.0, "eval_user_share", self.eval_user_share, "in [0, 1]")
        _check(0.0 <= self.max_bad_share <= 1.0, "max_bad_share", self.max_bad_share, "in [0, 1]")
        _check(self.rerank_transitions >= 0, "rerank_transitions", self.rerank_transitions, ">= 0")
        _check(
            self.rerank_min_engagements >= 5,
            "rerank_min_engagements",
            self.rerank_min_engagements,
            ">= 5 (training keeps at least two distinct engagements of the user)",
        )


@dataclass(frozen=True)
class EventSource:
    """Where the engagement log is and which columns hold what."""

    path: str  # a file, a directory (all non-hidden files in it) or a glob of shards
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str | None = "timestamp"  # None: no time column (collections may lack one): rows in file order
    action_col: str | None = None  # when set, a required column; see `actions`
    weight_col: str | None = None  # when set, a required numeric column; rows with weight <= 0 are dropped
    file_format: str = "auto"  # auto|csv|tsv|parquet|sessions; auto decides by extension (an outer .gz is ok)
    sessions: bool = False  # pre-sessionized: one session per line, item ids separated by whitespace
    actions: tuple[str, ...] = ()  # with action_col: keep only rows with one of these actions (empty: all)

    def __post_init__(self) -> None:
        _check(bool(self.path), "path", self.path, "a non-empty file, directory or glob")
        _check(self.file_format in FILE_FORMATS, "file_format", self.file_format, f"one of {FILE_FORMATS}")
        if self.sessions or self.file_format == "sessions":
            _check(
                self.file_format in ("auto", "sessions"),
                "file_format",
                self.file_format,
                "'auto' or 'sessions' when sessions=True",
            )
            object.__setattr__(self, "sessions", True)
            return
        for name in ("user_col", "item_col"):
            _check(bool(getattr(self, name)), name, getattr(self, name), "a column name")
        _check(self.time_col is None or bool(self.time_col), "time_col", self.time_col, "a column or None")
        if self.actions and not self.action_col:
            raise ValueError(f"EventSource.actions={self.actions!r} needs action_col (the column to filter)")
        object.__setattr__(self, "actions", tuple(self.actions))

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns every row must have (none for pre-sessionized input)."""
        if self.sessions:
            return ()
        optional = tuple(c for c in (self.time_col, self.action_col, self.weight_col) if c)
        return (self.user_col, self.item_col, *optional)


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid: expected {expected}")


# ---------------------------------------------------------------------------------------------------------
# Settings as JSON (the component's `input_config` exec property; never pickle).


# Bumped whenever the same log and settings would give other pairs or held-out queries: it is part of the
# component's exec properties, so TFX's cache never reuses a split made by older code.
# 2: `sessions_lib.tie_key`.
SPLIT_VERSION = 2


def encode_config(source: EventSource, settings: SessionSettings) -> str:
    """JSON of everything but the path, which travels as its own exec property."""
    source_fields = settings_to_value(source)
    del source_fields["path"]
    config = {
        "source": source_fields,
        "settings": settings_to_value(settings),
        "split_version": SPLIT_VERSION,
    }
    return json.dumps(config, sort_keys=True)


def decode_config(input_path: str, input_config: str) -> tuple[EventSource, SessionSettings]:
    """Inverse of `encode_config`; unknown or mistyped keys fail with the setting named (settings_codec)."""
    config = parse_json_object(input_config, "input_config")
    unknown = sorted(set(config) - {"source", "settings", "split_version"})
    if unknown:
        raise ValueError(f"input_config: unknown keys {unknown} (known: settings, source, split_version)")
    if config.get("split_version", SPLIT_VERSION) != SPLIT_VERSION:
        raise ValueError(
            f"input_config has split_version {config['split_version']!r}; "
            f"this code splits with {SPLIT_VERSION}"
        )
    source_fields = config.get("source", {})
    if not isinstance(source_fields, dict) or "path" in source_fields:  # the path is its own exec property
        raise ValueError(
            f"input_config.source must be an object of EventSource settings but path; got {source_fields!r}"
        )
    source = settings_from_value(EventSource, {**source_fields, "path": input_path}, "input_config.source")
    settings = settings_from_value(SessionSettings, config.get("settings", {}), "input_config.settings")
    return source, settings
