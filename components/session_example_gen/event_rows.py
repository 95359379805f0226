"""Log rows -> engagement events: parsing one row (or a batch of them) into an `Event`, a `BadRow` with the
reason and field a quarantine line names, or a `Dropped` well-formed row that is not a training engagement.

Pure: rows come from input_files.py; the executor runs `parse_batch` inside Beam, `read_events` reads a whole
log in memory for tools and benches.
"""

from __future__ import annotations

import datetime
import json
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, NamedTuple

from components.session_example_gen.input_files import RawRow, RowBatch, list_input_files, read_rows
from components.session_example_gen.session_settings import EventSource

# Why a row is malformed; the Beam counter is "bad_row_<reason>".
MISSING_FIELD = "missing_field"
BAD_TIMESTAMP = "bad_timestamp"
EMPTY_ID = "empty_id"
BAD_WEIGHT = "bad_weight"
BAD_ROW_REASONS = (MISSING_FIELD, BAD_TIMESTAMP, EMPTY_ID, BAD_WEIGHT)

# Well-formed rows that are not engagements we train on.
DROPPED_NONPOSITIVE_WEIGHT = "dropped_nonpositive_weight_events"
DROPPED_OTHER_ACTION = "dropped_other_action_events"


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


def quarantine_record(raw: RawRow, bad: BadRow) -> str:
    """One JSON line of the quarantine file."""
    record = {"file": raw.file, "line": raw.line, "reason": bad.reason, "detail": bad.detail, "row": raw.row}
    return json.dumps(record, default=str, sort_keys=True)


def read_events(path: str, source: EventSource | None = None, *, skip_bad_rows: bool = False) -> list[Event]:
    """Every event of a log (file, directory or glob) in memory, through the pipeline's parser, for tools and
    benches. A malformed row fails here, naming file, line and field, unless `skip_bad_rows` (the pipeline
    quarantines them) drops it."""
    source = source or EventSource(path=path)
    events = []
    for file in list_input_files(path):
        for raw in read_rows(file, source):
            parsed = parse_row(raw.row, source)
            if isinstance(parsed, BadRow):
                if skip_bad_rows:
                    continue
                raise ValueError(f"{raw.file} line {raw.line}: {parsed.reason}: {parsed.detail}")
            if isinstance(parsed, Event):
                events.append(parsed)
    return events
