"""Engagement events -> held-out queries, sessions and (item, label) training pairs: the algorithm, as pure
functions.

This is the reference: the tests and the benches run it on lists (`split_log`, `events_to_pairs`); the
executor runs `sessions_batch.batch_examples`, the same split on numpy arrays for a batch of users, which
tests/components/test_sessions_batch.py checks against `user_examples` user by user.
Nothing here imports TensorFlow or Beam. Rows become events in event_rows.py; files are read in
input_files.py.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from components.session_example_gen.event_rows import Event
from components.session_example_gen.session_settings import SessionSettings

# ---------------------------------------------------------------------------------------------------------
# 1. Rare items.


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
# 2. Held-out engagements.


class Pair(NamedTuple):
    item: str
    label: str
    timestamp: int  # of the label's engagement


class UserHistory(NamedTuple):
    train: list[Event]  # what training (pairs, vocabulary, co-occurrence) may see
    eval: Pair | None  # (third-to-last item -> second-to-last): validation, for choosing settings
    test: Pair | None  # (second-to-last item -> last): the reported figure
    rerank: tuple[Pair, ...] = ()  # (fourth-to-last -> third-to-last, ...), nearest first: reranker training


def tie_key(event: Event) -> int:
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
    return sorted(events, key=lambda e: (e.ts, e.seq, tie_key(e), e.item))


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
# 3. Sessions and pairs.

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


# ---------------------------------------------------------------------------------------------------------
# 4. One user's examples, and a whole log's in memory.


def hold_out(events: Iterable[Event], settings: SessionSettings) -> UserHistory:
    """`hold_out_last` with the settings' user share and reranker transitions."""
    return hold_out_last(
        events, settings.eval_user_share, settings.rerank_transitions, settings.rerank_min_engagements
    )


class UserExamples(NamedTuple):
    history: UserHistory  # the held-out pairs, and the events training may see
    sessions: UserSessions  # those training events cut into sessions
    train: list[Pair]  # the window pairs of those sessions, session by session


def user_examples(
    events: Iterable[Event], settings: SessionSettings, gap_seconds: int | None
) -> UserExamples:
    """One user's events (rare items already dropped) -> everything SessionExampleGen writes for them: the
    last engagements held out, then the sessions and window pairs of the rest. `split_log` calls it for
    a whole log in memory; the Beam executor's `sessions_batch.batch_examples` must match it per user."""
    history = hold_out(events, settings)
    sessions = sessionize(history.train, gap_seconds)
    train = [pair for session in sessions.sessions for pair in session_pairs(session, settings.window)]
    return UserExamples(history, sessions, train)


def events_by_user(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Each user's events in input order, users sorted by id: a reproducible order for the lists built."""
    by_user: dict[str, list[Event]] = {}
    for event in events:
        by_user.setdefault(event.user, []).append(event)
    return {user: by_user[user] for user in sorted(by_user)}


class LogSplit(NamedTuple):
    users: dict[str, UserExamples]  # by user id, sorted
    dropped_rare: int  # events of items engaged fewer than min_count times, dropped before anything else


def split_log(events: Iterable[Event], settings: SessionSettings, gap_seconds: int | None) -> LogSplit:
    """The SessionExampleGen split of a whole log in memory: rare items dropped over the whole log, then
    `user_examples` per user. The one implementation the reference (`events_to_pairs`) and the benches use."""
    kept, dropped = filter_rare_items(events, settings.min_count)
    users = {
        user: user_examples(user_events, settings, gap_seconds)
        for user, user_events in events_by_user(kept).items()
    }
    return LogSplit(users, dropped)


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
    split = split_log(events, settings, None if presessionized else settings.session_gap_seconds)
    counts: Counter = Counter(dropped_rare_item_events=split.dropped_rare)
    train: list[Pair] = []
    held: dict[str, list[Pair]] = {"eval": [], "test": [], "rerank": []}
    for examples in split.users.values():
        history = examples.history
        if history.test is not None:
            held["eval"].append(history.eval)
            held["test"].append(history.test)
            held["rerank"].extend(history.rerank)
        counts["sessions"] += len(examples.sessions.sessions)
        counts["dropped_short_sessions"] += examples.sessions.dropped_short
        counts["dropped_repeated_events"] += examples.sessions.dropped_repeats
        train.extend(examples.train)
    counts["pairs_train"] = len(train)
    for split_name, pairs in held.items():
        counts[f"pairs_{split_name}"] = len(pairs)
    return PairsResult(train, held["eval"], held["test"], counts, held["rerank"])
