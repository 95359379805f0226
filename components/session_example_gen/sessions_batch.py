"""`sessions_lib.user_examples` for a batch of users at once, on numpy arrays.

Why: per event, the Python of `user_examples` (an Event tuple, a sort key with a hash, the session and
window loops, a Pair tuple per pair) cost more than anything else in SessionExampleGen on logs of tens of
millions of events. Here a batch of users is sorted once (np.lexsort), held out, cut into sessions and paired
with array operations; the tie-break hash is computed only for events that share their user, second and
`seq` with another. The result is the same as `user_examples` user by user (tests/components/
test_sessions_batch.py checks it against that reference), users in the order given.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from components.session_example_gen import sessions_lib
from components.session_example_gen.event_rows import Event
from components.session_example_gen.session_settings import SessionSettings

UserChunks = tuple[str, Sequence[Sequence[tuple[str, int, int]]]]  # (user, lists of (item, ts, seq))


class PairArrays(NamedTuple):
    """Pairs as codes into `BatchPairs.items` and the label's timestamp; a user's pairs are consecutive."""

    items: np.ndarray
    labels: np.ndarray
    timestamps: np.ndarray


class BatchPairs(NamedTuple):
    items: list[str]  # the batch's item ids; the code arrays index it
    train: PairArrays
    eval: PairArrays
    test: PairArrays
    rerank: PairArrays  # each user's nearest transition first, as in UserHistory.rerank
    counts: Counter  # the executor's counters: sessions, dropped_*, pairs_<split>


_EMPTY = np.zeros(0, np.int64)


def _tie_keys(user: np.ndarray, item: np.ndarray, users: Sequence[str], names: list[str], rows) -> np.ndarray:
    return np.array(
        [sessions_lib.tie_key(Event(users[user[r]], names[item[r]], 0)) for r in rows], dtype=np.uint64
    )


def batch_examples(
    batch: Sequence[UserChunks],
    settings: SessionSettings,
    gap_seconds: int | None,
    frequent: frozenset[str] | None = None,
) -> BatchPairs:
    """Each user's events (items outside `frequent` dropped first) -> what `user_examples` gives them."""
    users = [user for user, _ in batch]
    item_names: list[str] = []
    ts_col: list[int] = []
    seq_col: list[int] = []
    per_user = np.zeros(len(batch), np.int64)
    for u, (_, chunks) in enumerate(batch):
        for chunk in chunks:
            if chunk:  # columns per chunk: no tuple per event
                chunk_items, chunk_ts, chunk_seq = zip(*chunk, strict=True)
                item_names += chunk_items
                ts_col += chunk_ts
                seq_col += chunk_seq
                per_user[u] += len(chunk)
    user = np.repeat(np.arange(len(batch), dtype=np.int64), per_user)
    ts = np.array(ts_col, np.int64)
    seq = np.array(seq_col, np.int64)
    names = sorted(set(item_names))  # codes in id order: the last sort key
    code_of = {name: code for code, name in enumerate(names)}
    item = np.array([code_of[name] for name in item_names], np.int64)
    counts: Counter = Counter()
    if frequent is not None:  # decided once per distinct item, not per event
        frequent_code = np.array([name in frequent for name in names], bool)
        keep = frequent_code[item] if len(item) else np.zeros(0, bool)
        counts["dropped_rare_item_events"] = len(item) - int(keep.sum())
        names = list(itertools.compress(names, frequent_code))
        item = (np.cumsum(frequent_code) - 1)[item[keep]]
        user, ts, seq = user[keep], ts[keep], seq[keep]
    if not len(item):
        empty = PairArrays(_EMPTY, _EMPTY, _EMPTY)
        return BatchPairs([], empty, empty, empty, empty, counts)

    # 1. Order, as sessions_lib._order: (ts, seq, tie hash, item) within each user.
    order = np.lexsort((item, seq, ts, user))
    user, item, ts, seq = user[order], item[order], ts[order], seq[order]
    same = (user[1:] == user[:-1]) & (ts[1:] == ts[:-1]) & (seq[1:] == seq[:-1])
    tied = np.flatnonzero(np.r_[same, False] | np.r_[False, same])
    if len(tied):
        tie = np.zeros(len(user), np.uint64)
        tie[tied] = _tie_keys(user, item, users, names, tied)
        order = np.lexsort((item, tie, seq, ts, user))
        user, item, ts = user[order], item[order], ts[order]
    n = len(user)
    first = np.r_[True, user[1:] != user[:-1]]  # the user's first event
    user_start = np.flatnonzero(first)
    user_end = np.r_[user_start[1:], n]

    # 2. Held-out pairs, as sessions_lib.hold_out_last: starts of runs of one item.
    run_start = np.flatnonzero(first | np.r_[True, item[1:] != item[:-1]])
    runs_before = np.searchsorted(run_start, user_start)  # index of the user's first run start
    distinct = np.diff(np.r_[runs_before, len(run_start)])
    batch_user = user[user_start]
    share = settings.eval_user_share
    eval_user = np.array([sessions_lib.is_eval_user(users[u], share) for u in batch_user.tolist()], bool)
    held_user = (distinct >= 3) & eval_user
    held = np.where(
        held_user,
        np.maximum(
            0, np.minimum(settings.rerank_transitions, distinct - settings.rerank_min_engagements + 1)
        ),
        0,
    )
    last_run = runs_before + distinct - 1  # index into run_start of the user's last run
    h = np.flatnonzero(held_user)
    third, second, last = (run_start[last_run[h] - k] for k in (2, 1, 0))
    eval_pairs = PairArrays(item[third], item[second], ts[second])
    test_pairs = PairArrays(item[second], item[last], ts[last])
    # rerank transition j (1 = nearest): run -3-j -> run -2-j, users in order, j ascending within a user.
    rerank_user, rerank_j = [], []
    for j in range(1, int(held.max(initial=0)) + 1):
        has = np.flatnonzero(held >= j)
        rerank_user.append(has)
        rerank_j.append(np.full(len(has), j))
    ru = np.concatenate(rerank_user) if rerank_user else _EMPTY
    rj = np.concatenate(rerank_j) if rerank_j else _EMPTY
    by_user = np.lexsort((rj, ru))
    ru, rj = ru[by_user], rj[by_user]
    query = run_start[last_run[ru] - 2 - rj]
    target = run_start[last_run[ru] - 1 - rj]
    rerank_pairs = PairArrays(item[query], item[target], ts[target])
    counts["pairs_eval"] = counts["pairs_test"] = len(h)
    counts["pairs_rerank"] = len(ru)

    # 3. Training events: a held-out user's events before run -2-held.
    cut = user_end.copy()
    cut[h] = run_start[last_run[h] - 1 - held[h]]
    train = np.flatnonzero(np.arange(n) < np.repeat(cut, user_end - user_start))
    user, item, ts = user[train], item[train], ts[train]

    # 4. Sessions, as sessions_lib.sessionize: cut at a new user or a gap; repeats collapse to the first.
    new_user = np.r_[True, user[1:] != user[:-1]]
    new_run = new_user.copy()
    if gap_seconds is not None:
        new_run[1:] |= (ts[1:] - ts[:-1]) > gap_seconds
    repeat = ~new_run & np.r_[False, item[1:] == item[:-1]]
    counts["dropped_repeated_events"] = int(repeat.sum())
    run_id = np.cumsum(new_run) - 1
    kept = np.flatnonzero(~repeat)
    run_of_kept = run_id[kept]
    run_length = np.bincount(run_of_kept, minlength=int(new_run.sum()))
    long_run = run_length >= 2
    counts["sessions"] = int(long_run.sum())
    counts["dropped_short_sessions"] = int((~long_run).sum())
    in_session = kept[long_run[run_of_kept]]
    session = run_id[in_session]

    # 5. Window pairs, as sessions_lib.session_pairs: by session, then by position, then by distance.
    sources, distances = [], []
    for k in range(1, settings.window):
        p = np.flatnonzero(session[k:] == session[:-k]) if k < len(session) else _EMPTY
        p = p[item[in_session[p]] != item[in_session[p + k]]]
        sources.append(p)
        distances.append(np.full(len(p), k))
    src = np.concatenate(sources)
    dist = np.concatenate(distances)
    ranked = np.lexsort((dist, src))
    src, dist = src[ranked], dist[ranked]
    a, b = in_session[src], in_session[src + dist]
    train_pairs = PairArrays(item[a], item[b], ts[b])
    counts["pairs_train"] = len(a)
    return BatchPairs(names, train_pairs, eval_pairs, test_pairs, rerank_pairs, counts)
