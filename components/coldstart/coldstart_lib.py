"""The `coldstart` candidate table, as pure functions: session co-occurrence over every event of the window.

SessionExampleGen drops items engaged fewer than `min_count` times and holds out each user's last
engagements before it makes pairs, so the `cooccurrence` table knows neither rare items nor an item whose
only engagement was held out. This table counts the same session pairs (same gap, same window, same ranking
as CooccurrenceCandidates) over every event read, and gives every engaged item a row, even one with no
co-occurring item (an empty row, which serving answers with the window's most engaged items: see
formats/coldstart.py). It serves; it is never evaluated on the held-out queries (it has seen their targets).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from components.cooccurrence import cooccurrence_lib
from components.session_example_gen import event_rows, sessions_lib
from formats import candidate_table

SOURCE_NAME = "coldstart"


def user_window_pairs(
    events: Iterable[event_rows.Event], gap_seconds: int | None, window: int
) -> list[tuple[str, str]]:
    """One user's (item, label) pairs over all their events: the sessions and window of SessionExampleGen,
    without its min_count cut and hold-out."""
    sessions = sessions_lib.sessionize(events, gap_seconds).sessions
    return [(p.item, p.label) for s in sessions for p in sessions_lib.session_pairs(s, window)]


def batch_pair_rows(
    users: list[list[event_rows.EventTuple]], vocabulary: np.ndarray, gap_seconds: int | None, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """(item rows in the sorted byte-string `vocabulary`, label rows) of a batch of users' window pairs: the
    pairs `user_window_pairs` makes per user, in numpy (per-user Python cost more than reading the events).

    Events are ordered as sessions_lib orders them: (user, ts, seq), then the tie key only where events
    share all three (hashing every event would cost as much as the loop it replaces), then the item.
    """
    flat = [event for events in users for event in events]
    if not flat:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    user = np.repeat(np.arange(len(users)), [len(events) for events in users])
    _, item_ids, ts, seq = zip(*flat, strict=True)
    rows = np.searchsorted(vocabulary, np.array([i.encode("utf-8") for i in item_ids], dtype=np.bytes_))
    ts, seq = np.asarray(ts, np.int64), np.asarray(seq, np.int64)
    order = np.lexsort((seq, ts, user))
    same = (np.diff(user[order]) == 0) & (np.diff(ts[order]) == 0) & (np.diff(seq[order]) == 0)
    if same.any():  # ties: the tie key, then the item (its vocabulary row sorts as the id does)
        tied = order[np.union1d(np.flatnonzero(same), np.flatnonzero(same) + 1)]
        tie = np.zeros(len(flat), np.uint64)
        tie[tied] = [sessions_lib.tie_key(event_rows.Event(*flat[k])) for k in tied]
        order = np.lexsort((rows, tie, seq, ts, user))
    user, rows, ts = user[order], rows[order], ts[order]
    starts = np.ones(len(flat), bool)  # where a session starts
    starts[1:] = user[1:] != user[:-1]
    if gap_seconds is not None:
        starts[1:] |= (ts[1:] - ts[:-1]) > gap_seconds
    keep = starts.copy()  # consecutive repeats of an item inside a session collapse to the first
    keep[1:] |= rows[1:] != rows[:-1]
    session = np.cumsum(starts)[keep]
    rows = rows[keep]
    items, labels = [], []
    for distance in range(1, window):
        same_session = session[distance:] == session[:-distance]
        pair = same_session & (rows[distance:] != rows[:-distance])
        items.append(rows[:-distance][pair])
        labels.append(rows[distance:][pair])
    if not items:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(items).astype(np.int64), np.concatenate(labels).astype(np.int64)


def coldstart_table(
    events: Iterable[event_rows.Event],
    gap_seconds: int | None,
    window: int,
    settings: cooccurrence_lib.CooccurrenceSettings,
) -> candidate_table.CandidateTable:
    """In memory: events -> the table (popularity: engagements per item). The Beam executor must match it."""
    events = list(events)
    by_user: dict[str, list[event_rows.Event]] = {}
    for event in events:
        by_user.setdefault(event.user, []).append(event)
    pairs = [pair for user in by_user.values() for pair in user_window_pairs(user, gap_seconds, window)]
    lists, _ = cooccurrence_lib.cooccurrence_lists(pairs, settings)
    engagements = Counter(event.item for event in events)
    meta = {"source": SOURCE_NAME, "window": window, "session_gap_seconds": gap_seconds}
    return candidate_table.from_lists(lists, engagements, settings.top_n, meta)
