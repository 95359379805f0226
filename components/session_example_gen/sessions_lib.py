"""Engagement logs -> sessions -> (item, label) training pairs, as pure functions.

The executor runs these inside Beam; the tests run them on hand-made lists. Nothing here imports TensorFlow or
Beam at import time, so the algorithm can be read and tested on its own. File access (listing, reading,
fingerprinting) is kept at the bottom, streaming row by row so that no function ever holds a whole log.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import glob
import gzip
import hashlib
import io
import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

# Beam Metrics namespace of every counter below.
METRICS_NAMESPACE = "session_example_gen"

# Why a row is malformed; the Beam counter is "bad_row_<reason>".
MISSING_FIELD = "missing_field"
BAD_TIMESTAMP = "bad_timestamp"
EMPTY_ID = "empty_id"
BAD_WEIGHT = "bad_weight"
BAD_ROW_REASONS = (MISSING_FIELD, BAD_TIMESTAMP, EMPTY_ID, BAD_WEIGHT)

# Well-formed rows that are not engagements we train on.
DROPPED_NONPOSITIVE_WEIGHT = "dropped_nonpositive_weight_events"
DROPPED_OTHER_ACTION = "dropped_other_action_events"

FILE_FORMATS = ("auto", "csv", "tsv", "parquet", "sessions")
_EXTENSION_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet"}


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
# component's exec properties, so TFX's cache never reuses a split made by older code. 2: `_tie_key`.
SPLIT_VERSION = 2


def encode_config(source: EventSource, settings: SessionSettings) -> str:
    """JSON of everything but the path, which travels as its own exec property."""
    source_fields = dataclasses.asdict(source)
    del source_fields["path"]
    source_fields["actions"] = list(source.actions)
    config = {
        "source": source_fields,
        "settings": dataclasses.asdict(settings),
        "split_version": SPLIT_VERSION,
    }
    return json.dumps(config, sort_keys=True)


def decode_config(input_path: str, input_config: str) -> tuple[EventSource, SessionSettings]:
    """Inverse of `encode_config`; unknown or mistyped keys fail with the key named."""
    try:
        config = json.loads(input_config)
    except json.JSONDecodeError as e:
        raise ValueError(f"input_config is not valid JSON ({e}): {input_config[:200]!r}") from e
    if not isinstance(config, dict) or set(config) - {"source", "settings", "split_version"}:
        raise ValueError(
            f"input_config must be an object with keys source, settings, split_version: {input_config!r}"
        )
    if config.get("split_version", SPLIT_VERSION) != SPLIT_VERSION:
        raise ValueError(
            f"input_config has split_version {config['split_version']!r}; "
            f"this code splits with {SPLIT_VERSION}"
        )
    source_fields = dict(config.get("source", {}))
    settings_fields = dict(config.get("settings", {}))
    _check_keys("input_config.source", source_fields, EventSource, exclude={"path"})
    _check_keys("input_config.settings", settings_fields, SessionSettings)
    if "actions" in source_fields:
        source_fields["actions"] = tuple(source_fields["actions"])
    return EventSource(path=input_path, **source_fields), SessionSettings(**settings_fields)


def _check_keys(where: str, fields: Mapping[str, Any], cls: type, exclude: set[str] | None = None) -> None:
    known = {f.name for f in dataclasses.fields(cls)} - (exclude or set())
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; expected some of {sorted(known)}")


# ---------------------------------------------------------------------------------------------------------
# 1. Rows -> events.


class Event(NamedTuple):
    """One engagement. `seq` orders events sharing a second (position in a pre-sessionized line, else 0)."""

    user: str
    item: str
    ts: int
    seq: int = 0


class BadRow(NamedTuple):
    """A malformed row: `reason` is one of BAD_ROW_REASONS, `detail` says which field and what was found."""

    reason: str
    detail: str


class Dropped(NamedTuple):
    """A well-formed row that is not a training engagement (its weight or action says so)."""

    reason: str


def parse_timestamp(value: Any) -> int:
    """Unix seconds from an int, a float, a numeric string or an ISO-8601 string (naive means UTC)."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite timestamp: {value!r}")
        return math.floor(value)
    if isinstance(value, datetime.datetime):
        return _datetime_seconds(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return parse_timestamp(float(text))
    except ValueError:
        pass
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return _datetime_seconds(datetime.datetime.fromisoformat(iso))
    except ValueError:
        raise ValueError(f"not Unix seconds or ISO-8601: {value!r}") from None


def _datetime_seconds(value: datetime.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return math.floor(value.timestamp())


def _as_id(value: Any) -> str:
    """Ids from text or numeric columns compare equal: 42, 42.0 and ' 42 ' are all '42'."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_blank(value: Any) -> bool:
    return isinstance(value, (str, bytes)) and not value.strip()


def parse_row(row: Mapping[str, Any], source: EventSource) -> Event | BadRow | Dropped:
    """One log row -> an Event, or why it is malformed (BadRow) or not an engagement (Dropped)."""
    ids = (source.user_col, source.item_col)
    for column in source.columns:
        value = row.get(column)
        if _is_null(value) or (column not in ids and _is_blank(value)):
            return BadRow(MISSING_FIELD, f"column {column!r} is missing or empty")
    user, item = _as_id(row[source.user_col]), _as_id(row[source.item_col])
    for column, value in ((source.user_col, user), (source.item_col, item)):
        if not value:
            return BadRow(EMPTY_ID, f"column {column!r} holds an empty id")
    try:
        ts = 0 if source.time_col is None else parse_timestamp(row[source.time_col])
    except ValueError as e:
        return BadRow(BAD_TIMESTAMP, f"column {source.time_col!r}: {e}")
    if source.weight_col:
        raw = row[source.weight_col]
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            return BadRow(BAD_WEIGHT, f"column {source.weight_col!r}: not a number: {raw!r}")
        if not math.isfinite(weight):
            return BadRow(BAD_WEIGHT, f"column {source.weight_col!r}: not a finite number: {raw!r}")
        if weight <= 0:
            return Dropped(DROPPED_NONPOSITIVE_WEIGHT)
    if source.actions and _as_id(row[source.action_col]) not in source.actions:
        return Dropped(DROPPED_OTHER_ACTION)
    return Event(user, item, ts)


def parse_session_line(text: str, file: str, line: int) -> list[Event]:
    """A pre-sessionized line -> its events: one synthetic user per line, timestamp = line number.

    Each line is its own history, so its last items are held out for evaluation like a user's.
    """
    user = f"{file}:{line}"
    return [Event(user, item, line, seq) for seq, item in enumerate(text.split())]


EventTuple = tuple[str, str, int, int]  # (user, item, ts, seq): an Event without the class, for batches


class ParsedBatch(NamedTuple):
    events: list[EventTuple]
    bad: list[str]  # quarantine lines (see quarantine_record)
    counts: Counter  # rows_read, events_read, bad_rows, bad_row_<reason>, dropped reasons


def _plain_event(user: Any, item: Any, time: Any) -> tuple[str, str, int] | None:
    """The common row (text or integer ids, integer seconds) parsed cheaply; None sends it to parse_row.

    Only rows that parse_row would read the same way are accepted: ids stripped, int() of the time text.
    """
    if type(user) is int:
        user = str(user)
    if type(item) is int:
        item = str(item)
    if type(user) is not str or type(item) is not str:
        return None
    user, item = user.strip(), item.strip()
    if not user or not item:
        return None
    if type(time) is int:
        return user, item, time
    if type(time) is not str:
        return None
    try:
        return user, item, int(time)
    except ValueError:
        return None


def parse_batch(batch: RowBatch, source: EventSource) -> ParsedBatch:
    """A RowBatch -> its events, quarantine lines and counts; each row means what parse_row says it means."""
    events: list[EventTuple] = []
    bad: list[str] = []
    counts: Counter = Counter()
    if source.sessions:
        for line, (text,) in zip(batch.lines, batch.rows, strict=True):
            if text.strip():
                counts["rows_read"] += 1
                events.extend(tuple(e) for e in parse_session_line(text, batch.file, line))
        counts["events_read"] = len(events)
        return ParsedBatch(events, bad, counts)
    columns = batch.columns
    fast = not (source.weight_col or source.action_col) and all(
        c in columns for c in (source.user_col, source.item_col, source.time_col) if c is not None
    )
    fast = fast and source.time_col is not None
    if fast:
        u, i, t = (columns.index(c) for c in (source.user_col, source.item_col, source.time_col))
        needed = max(u, i, t)
    for row_number, values in enumerate(batch.rows):
        plain = _plain_event(values[u], values[i], values[t]) if fast and len(values) > needed else None
        if plain is not None:
            events.append((*plain, 0))
            continue
        raw = batch.raw(row_number)
        parsed = parse_row(raw.row, source)
        if isinstance(parsed, Event) and source.time_col is None:  # no time: the row's place in its file
            events.append((parsed.user, parsed.item, raw.line, parsed.seq))
        elif isinstance(parsed, Event):
            events.append(tuple(parsed))
        elif isinstance(parsed, BadRow):
            counts["bad_rows"] += 1
            counts[f"bad_row_{parsed.reason}"] += 1
            bad.append(quarantine_record(raw, parsed))
        else:
            counts[parsed.reason] += 1
    counts["rows_read"] = len(batch.rows)
    counts["events_read"] = len(events)
    return ParsedBatch(events, bad, counts)


# ---------------------------------------------------------------------------------------------------------
# 2. Rare items.


def is_frequent(count: int, min_count: int) -> bool:
    """Items engaged fewer than min_count times have too little signal to learn an embedding from."""
    return count >= min_count


def filter_rare_items(events: Iterable[Event], min_count: int) -> tuple[list[Event], int]:
    """In-memory version of the executor's per-item filter: (kept events, number of dropped events)."""
    events = list(events)
    counts = Counter(e.item for e in events)
    kept = [e for e in events if is_frequent(counts[e.item], min_count)]
    return kept, len(events) - len(kept)


# ---------------------------------------------------------------------------------------------------------
# 3. Held-out engagements.


class Pair(NamedTuple):
    item: str
    label: str
    timestamp: int  # of the label's engagement


class UserHistory(NamedTuple):
    train: list[Event]  # what training (pairs, vocabulary, co-occurrence) may see
    eval: Pair | None  # (third-to-last item -> second-to-last): validation, for choosing settings
    test: Pair | None  # (second-to-last item -> last): the reported figure
    rerank: tuple[Pair, ...] = ()  # (fourth-to-last -> third-to-last, ...), nearest first: reranker training


def _tie_key(event: Event) -> int:
    """An order for events sharing a second: reproducible, and different from one user to the next.

    Logs often stamp a burst of engagements with one second (half of MovieLens' consecutive ratings), so their
    true order is unknown. Ordering them by item id would hand every user the same id order: window pairs
    would link items with neighbouring ids, and the held-out target would tend to be the burst's largest id,
    an order that direction-aware candidates and the reranker then learn instead of behaviour.
    """
    # A real hash: CRC's linearity would leave every user the same few orders.
    digest = hashlib.blake2b(f"{event.user}\x1f{event.item}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _order(events: Iterable[Event]) -> list[Event]:
    """Events sharing a second come out the same whatever the input order."""
    return sorted(events, key=lambda e: (e.ts, e.seq, _tie_key(e), e.item))


def is_eval_user(user: str, share: float) -> bool:
    """A stable, seed-free choice of users, so reruns and other tools hold out the same engagements."""
    return share >= 1.0 or (share > 0.0 and zlib.crc32(user.encode("utf-8")) % 10_000 < share * 10_000)


def rerank_held_out(distinct: int, transitions: int, min_engagements: int) -> int:
    """How many reranker transitions a user with `distinct` engagements gives up: up to `transitions`, and
    only while training keeps min_engagements - 3 of them (the validation and test targets are held too)."""
    return max(0, min(transitions, distinct - min_engagements + 1))


def hold_out_last(
    events: Iterable[Event], share: float, rerank_transitions: int = 0, rerank_min_engagements: int = 5
) -> UserHistory:
    """Leave-last-out split of one user's history (consecutive repeats of an item count once).

    The last engagement is the test target and the one before it the test query; the second-to-last is the
    validation target and the third-to-last its query. With `rerank_transitions`, the transitions before
    that (fourth-to-last -> third-to-last, ...) are held out too, as the reranker's training queries (see
    `rerank_held_out` for who gives them up). No held-out target is seen by training, so the reranker is
    fitted on transitions the features never saw, validation choices never peek at the test, and the test
    measures what users do next. Users with fewer than three distinct consecutive items, or outside
    `share`, keep their whole history for training.
    """
    ordered = _order(events)
    starts = [i for i, e in enumerate(ordered) if i == 0 or ordered[i - 1].item != e.item]
    if len(starts) < 3 or not is_eval_user(ordered[0].user, share):
        return UserHistory(ordered, None, None)
    held = rerank_held_out(len(starts), rerank_transitions, rerank_min_engagements)
    third, second, last = (ordered[i] for i in starts[-3:])
    rerank = tuple(
        Pair(ordered[starts[-3 - j]].item, ordered[starts[-2 - j]].item, ordered[starts[-2 - j]].ts)
        for j in range(1, held + 1)
    )
    return UserHistory(
        ordered[: starts[-2 - held]],
        Pair(third.item, second.item, second.ts),
        Pair(second.item, last.item, last.ts),
        rerank,
    )


# ---------------------------------------------------------------------------------------------------------
# 4. Sessions and pairs.

Session = tuple[tuple[str, int], ...]  # ((item, ts), ...) in engagement order


class UserSessions(NamedTuple):
    sessions: list[Session]
    dropped_short: int  # sessions with fewer than 2 distinct consecutive items
    dropped_repeats: int  # events that repeated the previous item of their session


def sessionize(events: Iterable[Event], gap_seconds: int | None) -> UserSessions:
    """One user's events -> sessions of >= 2 items.

    Sorted by (ts, seq, item) so that events sharing a second come out the same whatever the input order.
    Cut where consecutive events are more than gap_seconds apart (None: never), then consecutive repeats of
    an item inside a session collapse to the first, which keeps its timestamp.
    """
    runs: list[list[Event]] = []
    for event in _order(events):
        if runs and (gap_seconds is None or event.ts - runs[-1][-1].ts <= gap_seconds):
            runs[-1].append(event)
        else:
            runs.append([event])
    sessions, short, repeats = [], 0, 0
    for run in runs:
        session: list[tuple[str, int]] = []
        for event in run:
            if session and session[-1][0] == event.item:
                repeats += 1
            else:
                session.append((event.item, event.ts))
        if len(session) >= 2:
            sessions.append(tuple(session))
        else:
            short += 1
    return UserSessions(sessions, short, repeats)


def session_pairs(session: Session, window: int) -> list[Pair]:
    """Every label within the window after each item (the item never its own label)."""
    pairs = []
    for i, (item, _) in enumerate(session):
        for label, ts in session[i + 1 : i + window]:
            if label != item:
                pairs.append(Pair(item, label, ts))
    return pairs


class PairsResult(NamedTuple):
    train: list[Pair]
    eval: list[Pair]
    test: list[Pair]
    counts: Counter
    rerank: list[Pair]  # every held-out reranker transition


def events_to_pairs(
    events: Iterable[Event], settings: SessionSettings, presessionized: bool = False
) -> PairsResult:
    """The whole algorithm in memory, for tests and as the reference the Beam pipeline must match."""
    counts: Counter = Counter()
    kept, counts["dropped_rare_item_events"] = filter_rare_items(events, settings.min_count)
    by_user: dict[str, list[Event]] = {}
    for event in kept:
        by_user.setdefault(event.user, []).append(event)
    gap = None if presessionized else settings.session_gap_seconds
    train: list[Pair] = []
    held: dict[str, list[Pair]] = {"eval": [], "test": [], "rerank": []}
    for user_events in by_user.values():
        history = hold_out_last(
            user_events,
            settings.eval_user_share,
            settings.rerank_transitions,
            settings.rerank_min_engagements,
        )
        if history.test is not None:
            held["eval"].append(history.eval)
            held["test"].append(history.test)
            held["rerank"].extend(history.rerank)
        result = sessionize(history.train, gap)
        counts["sessions"] += len(result.sessions)
        counts["dropped_short_sessions"] += result.dropped_short
        counts["dropped_repeated_events"] += result.dropped_repeats
        for session in result.sessions:
            train.extend(session_pairs(session, settings.window))
    counts["pairs_train"] = len(train)
    for split, pairs in held.items():
        counts[f"pairs_{split}"] = len(pairs)
    return PairsResult(train, held["eval"], held["test"], counts, held["rerank"])


# ---------------------------------------------------------------------------------------------------------
# 5. Files: listing, checking, streaming rows, fingerprinting.


class RawRow(NamedTuple):
    file: str
    line: int  # 1-based physical line (CSV/TSV/sessions) or row number (Parquet)
    row: dict[str, Any]  # column -> value; for sessions {"session": the line}


SESSION_FIELD = "session"


def _fileio():
    # TFX's fileio reaches gs:// and other remote file systems; imported late because it imports TensorFlow.
    from tfx.dsl.io import fileio

    return fileio


def _is_local(path: str) -> bool:
    return "://" not in path


class _LocalFiles:
    """The part of TFX's fileio that listing and fingerprinting use, for local paths, without TensorFlow."""

    glob = staticmethod(glob.glob)
    isdir = staticmethod(os.path.isdir)
    exists = staticmethod(os.path.exists)
    listdir = staticmethod(os.listdir)
    stat = staticmethod(os.stat)


def list_input_files(path: str) -> list[str]:
    """Sorted data files of a file, a directory (its non-hidden files, no subdirectories) or a glob.

    Local paths are listed with the standard library, remote ones (gs://...) through TFX's fileio, so that a
    mistyped local path is reported before TensorFlow is imported (tens of seconds)."""
    fileio = _LocalFiles() if _is_local(path) else _fileio()
    if any(c in path for c in "*?["):
        files, why = [str(f) for f in fileio.glob(path)], "the glob matches no data file"
    elif fileio.isdir(path):
        files = [os.path.join(path, str(n).rstrip("/")) for n in fileio.listdir(path)]
        why = "the directory is empty" if not files else "the directory holds no data file"
    elif fileio.exists(path):
        files, why = [path], "it is not a data file"
    else:
        files, why = [], "no such file or directory"
    # Hidden and marker files (.crc, _SUCCESS) and subdirectories are not data.
    files = [f for f in files if not os.path.basename(f).startswith((".", "_")) and not fileio.isdir(f)]
    if not files:
        raise FileNotFoundError(
            f"no input files at {path!r}: {why} (hidden files, _-marker files and subdirectories are not "
            "read); expected a data file, a directory of them or a glob"
        )
    return sorted(files)


def fingerprint_inputs(path: str) -> str:
    """Hash of the input files, so a pipeline cache sees new data: for local files their names and contents
    (an edit that keeps a file's size and modification time, as `cp -p`, `rsync -a` or `tar` can leave, is
    seen; about 1 s per GB, docs/BENCHMARKS.md); for remote ones (gs://...) their names, sizes and
    modification times, what the filesystem offers without reading them."""
    return fingerprint_files(list_input_files(path))


def fingerprint_files(files: Sequence[str]) -> str:
    """`fingerprint_inputs` of a given list of files (the files of the spans a pattern resolved to)."""
    local = all(_is_local(f) for f in files)
    fileio = _LocalFiles() if local else _fileio()
    digest = hashlib.sha256()
    for file in files:
        if local:
            with open(file, "rb") as f:
                content = hashlib.file_digest(f, "sha256").hexdigest()
            digest.update(f"{file}\t{content}\n".encode())
            continue
        stat = fileio.stat(file)
        size = getattr(stat, "st_size", getattr(stat, "length", 0))
        mtime = getattr(stat, "st_mtime_ns", getattr(stat, "mtime_nsec", 0))
        digest.update(f"{file}\t{size}\t{mtime}\n".encode())
    return digest.hexdigest()


def file_format(file: str, source: EventSource) -> str:
    """csv, tsv, parquet or sessions for one file, from the source's setting or the file's extension."""
    if source.sessions:
        return "sessions"
    if source.file_format != "auto":
        return source.file_format
    name = file[:-3] if file.endswith(".gz") else file
    fmt = _EXTENSION_FORMATS.get(os.path.splitext(name)[1].lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {file!r} from its extension: expected one of "
            f"{sorted(_EXTENSION_FORMATS)} (optionally + .gz), or set file_format, or sessions=True for .txt"
        )
    return fmt


class _RemoteFile(io.RawIOBase):
    """A TFX (TensorFlow) file handle as a standard binary stream, which pyarrow and gzip need."""

    def __init__(self, handle: Any):
        self._handle = handle

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._handle.seek(offset, whence)
        return self._handle.tell()

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def _open_binary(file: str) -> BinaryIO:
    if _is_local(file):
        stream: BinaryIO = open(file, "rb")  # noqa: SIM115
    else:
        stream = io.BufferedReader(_RemoteFile(_fileio().open(file, "rb")), buffer_size=1 << 20)
    if file.endswith(".gz"):
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    return stream


def _text_lines(file: str) -> Iterator[str]:
    with _open_binary(file) as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{file}: line {number} is not valid UTF-8 ({e})") from e


ROWS_PER_BATCH = 16_384  # rows parsed (and sent between Beam steps) together


class RowBatch(NamedTuple):
    """Consecutive rows of one file: `rows[i]` holds the values of `columns` found at line `lines[i]`.

    Rows travel in batches, not one by one, because per-element overhead in Beam (and a dict per row) would
    otherwise cost more than the parsing itself on logs of tens of millions of rows.
    """

    file: str
    columns: tuple[str, ...]
    lines: list[int]
    rows: list[Sequence[Any]]

    def raw(self, i: int) -> RawRow:
        """Row i as a RawRow; as csv.DictReader says, a short row's missing values are None."""
        values = self.rows[i]
        row = {column: values[k] if k < len(values) else None for k, column in enumerate(self.columns)}
        return RawRow(self.file, self.lines[i], row)


def read_row_batches(
    file: str, source: EventSource, rows_per_batch: int = ROWS_PER_BATCH
) -> Iterator[RowBatch]:
    """Streams one file as RowBatches: Parquet batch by batch, text line by line (blank CSV lines skipped)."""
    fmt = file_format(file, source)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        columns = tuple(source.columns)
        with _open_binary(file) as stream:
            line = 0
            for batch in pq.ParquetFile(stream).iter_batches(
                batch_size=rows_per_batch, columns=list(columns)
            ):
                rows = list(zip(*(batch.column(c).to_pylist() for c in columns), strict=True))
                yield RowBatch(file, columns, list(range(line + 1, line + len(rows) + 1)), rows)
                line += len(rows)
        return
    lines: list[int] = []
    rows: list[Sequence[Any]] = []
    if fmt == "sessions":
        columns: tuple[str, ...] = (SESSION_FIELD,)
        numbered: Iterator[tuple[int, Sequence[Any]]] = (
            (line, (text,)) for line, text in enumerate(_text_lines(file), start=1)
        )
    else:
        reader = csv.reader(_text_lines(file), delimiter="\t" if fmt == "tsv" else ",")
        columns = tuple(next(reader, ()))
        numbered = ((reader.line_num, row) for row in reader if row)
    for line, row in numbered:
        lines.append(line)
        rows.append(row)
        if len(rows) == rows_per_batch:
            yield RowBatch(file, columns, lines, rows)
            lines, rows = [], []
    if rows:
        yield RowBatch(file, columns, lines, rows)


def read_rows(file: str, source: EventSource) -> Iterator[RawRow]:
    """Streams one file's rows one by one (for tools; the pipeline reads RowBatches)."""
    for batch in read_row_batches(file, source):
        for i in range(len(batch.rows)):
            yield batch.raw(i)


def _header_and_first_row(file: str, fmt: str, source: EventSource) -> tuple[list[str] | None, bool]:
    """(column names or None for sessions, whether the file has a data row), reading as little as possible."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with _open_binary(file) as stream:
            parquet = pq.ParquetFile(stream)
            return list(parquet.schema_arrow.names), parquet.metadata.num_rows > 0
    lines = _text_lines(file)
    try:
        if fmt == "sessions":
            return None, any(text.strip() for text in lines)
        reader = csv.DictReader(lines, delimiter="\t" if fmt == "tsv" else ",")
        return list(reader.fieldnames or []), next(reader, None) is not None
    finally:
        lines.close()


def check_input_files(files: Sequence[str], source: EventSource) -> None:
    """Fails before any work when a file is unreadable, lacks a required column, or no file has a row."""
    has_rows = False
    for file in files:
        fmt = file_format(file, source)
        try:
            columns, rows = _header_and_first_row(file, fmt, source)
        except Exception as e:
            raise ValueError(f"cannot read {file!r} as {fmt}: {type(e).__name__}: {e}") from e
        if columns == [] and not rows:
            raise ValueError(
                f"{file!r} is empty: no header line and no rows; expected a {fmt} header naming the columns "
                f"{list(source.columns)}, then one row per event"
            )
        missing = [c for c in source.columns if c not in (columns or [])]
        if missing:
            raise ValueError(
                f"{file!r} has no column(s) {missing}: its {fmt} header is {columns}; "
                f"set user_col/item_col/time_col (and action_col/weight_col) to the names it uses"
            )
        has_rows = has_rows or rows
    if not has_rows:
        what = "line" if source.sessions else "row under the header"
        raise ValueError(
            f"no rows in the input {source.path!r}: not one {what} in {len(files)} file(s), e.g. {files[:3]}"
        )


def quarantine_record(raw: RawRow, bad: BadRow) -> str:
    """One JSON line of the quarantine file."""
    record = {"file": raw.file, "line": raw.line, "reason": bad.reason, "detail": bad.detail, "row": raw.row}
    return json.dumps(record, default=str, sort_keys=True)


# ---------------------------------------------------------------------------------------------------------
# 6. Run checks.

# Counters reported on the Examples artifact and in the summary line, in this order.
REPORTED_COUNTERS = (
    "rows_read",
    "events_read",
    "bad_rows",
    *(f"bad_row_{reason}" for reason in BAD_ROW_REASONS),
    DROPPED_NONPOSITIVE_WEIGHT,
    DROPPED_OTHER_ACTION,
    "dropped_rare_item_events",
    "dropped_repeated_events",
    "dropped_short_sessions",
    "sessions",
    "pairs_train",
    "pairs_eval",
    "pairs_test",
    "pairs_rerank",
)


def summary(counts: Mapping[str, int]) -> str:
    """One line with every counter, zeros left out."""
    return ", ".join(f"{name}={counts[name]}" for name in REPORTED_COUNTERS if counts.get(name))


def too_many_bad_rows(counts: Mapping[str, int], max_bad_share: float) -> bool:
    """More malformed rows than `max_bad_share` of the rows read: the failure that names the quarantine."""
    rows, bad = counts.get("rows_read", 0), counts.get("bad_rows", 0)
    return rows > 0 and bad / rows > max_bad_share


def check_counts(
    input_path: str, counts: Mapping[str, int], settings: SessionSettings, quarantine: str
) -> None:
    """Fails a run that read nothing, read too many malformed rows, or produced no training pair."""
    rows, bad = counts.get("rows_read", 0), counts.get("bad_rows", 0)
    if rows == 0:
        raise ValueError(f"no rows read from {input_path!r}")
    if too_many_bad_rows(counts, settings.max_bad_share):
        by_reason = {r: counts.get(f"bad_row_{r}", 0) for r in BAD_ROW_REASONS}
        reasons = ", ".join(f"{r}={n}" for r, n in by_reason.items() if n)
        raise ValueError(
            f"{bad} of {rows} rows ({bad / rows:.2%}) of {input_path!r} are malformed ({reasons}), more than "
            f"max_bad_share={settings.max_bad_share:.2%}; the bad rows are listed in {quarantine}"
        )
    if counts.get("pairs_train", 0) == 0:
        raise ValueError(
            f"no training pairs from {input_path!r} ({summary(counts)}): every pair was filtered out; "
            f"check min_count={settings.min_count}, session_gap_seconds={settings.session_gap_seconds} and "
            f"window={settings.window}"
        )
