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
from collections.abc import Iterable, Sequence

import numpy as np

from components.cooccurrence import cooccurrence_lib
from components.session_example_gen import event_rows, sessions_batch, sessions_lib
from components.session_example_gen.session_settings import SessionSettings
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
    batch: Sequence[tuple[str, Sequence[Sequence[event_rows.EventTuple]]]],
    vocabulary: np.ndarray,
    gap_seconds: int | None,
    window: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(item rows in the sorted byte-string `vocabulary`, label rows) of a batch of users' window pairs: the
    pairs `user_window_pairs` makes per user, from SessionExampleGen's batched sessions with nobody held out
    (per-user Python cost more than reading the events)."""
    users = [(user, [[event[1:] for event in chunk] for chunk in chunks]) for user, chunks in batch]
    result = sessions_batch.batch_examples(
        users, SessionSettings(window=window, eval_user_share=0.0), gap_seconds
    )
    if not len(result.train.items):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    names = np.array([name.encode("utf-8") for name in result.items], dtype=np.bytes_)
    rows = np.searchsorted(vocabulary, names)  # per distinct item of the batch, not per event
    return rows[result.train.items], rows[result.train.labels]


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
