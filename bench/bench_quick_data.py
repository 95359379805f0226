"""bench-quick's data: a synthetic log -> sessions -> the exact skip-gram pairs both trainers see.

Sessions are SessionExampleGen's own: the log is read by the pipeline's parser and each user's events are cut
by sessions_lib.sessionize (events ordered by time, events sharing a second by a hash of (user, item), cut
where consecutive events are more than the gap apart, consecutive repeats collapsed, sessions shorter than two
dropped), with min_count 1 and no held-out engagements. Reading and cutting are not timed: the benchmark
measures training, not data preparation.

The pairs are gensim's skip-gram pairs with a fixed window (`shrink_windows=False`, `sample=0`): every
(center, context) with 1 <= |position distance| <= window inside a session, both directions. That makes the
pair count exact for both trainers, so pairs/s compare like for like.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from components.session_example_gen.event_rows import read_events
from components.session_example_gen.sessions_lib import events_by_user, sessionize


@dataclass(frozen=True)
class Sessions:
    tokens: np.ndarray  # [n] vocabulary indices (most frequent first), sessions back to back
    offsets: np.ndarray  # [sessions + 1] start of each session in tokens
    item_ids: list[str]  # vocabulary index -> item id
    counts: np.ndarray  # [vocabulary] occurrences in tokens

    def as_sentences(self) -> list[list[str]]:
        ids = np.asarray(self.item_ids)
        return [
            ids[self.tokens[a:b]].tolist() for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]


def load_sessions(events_dir: str, gap_seconds: int = 1800) -> Sessions:
    """All shards of a synthetic log -> sessions (SessionExampleGen's rules, min_count 1)."""
    events = read_events(os.path.join(events_dir, "events-*.csv"))
    sessions = [
        session
        for user_events in events_by_user(events).values()
        for session in sessionize(user_events, gap_seconds).sessions
    ]
    item = np.array([item for session in sessions for item, _ in session])
    lengths = np.array([len(session) for session in sessions], dtype=np.int64)
    unique, inverse, counts = np.unique(item, return_inverse=True, return_counts=True)
    by_frequency = np.lexsort((unique, -counts))  # most frequent first, ties by id: Transform's order
    rank = np.empty_like(by_frequency)
    rank[by_frequency] = np.arange(len(by_frequency))
    return Sessions(
        tokens=rank[inverse].astype(np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        item_ids=[str(i) for i in unique[by_frequency]],
        counts=counts[by_frequency].astype(np.int64),
    )


def skipgram_pairs(sessions: Sessions, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(centers, contexts): every ordered pair of positions 1..window apart inside one session.

    Center-major, as gensim walks them: all contexts of position 0, then of position 1, ...
    """
    session_of = np.repeat(np.arange(len(sessions.offsets) - 1), np.diff(sessions.offsets))
    positions, contexts = [], []
    for distance in range(1, window + 1):
        same = np.flatnonzero(session_of[:-distance] == session_of[distance:])
        positions += [same, same + distance]
        contexts += [sessions.tokens[same + distance], sessions.tokens[same]]
    position, context = np.concatenate(positions), np.concatenate(contexts)
    order = np.argsort(position, kind="stable")
    return sessions.tokens[position[order]], context[order]


def count_gensim_pairs(lengths: np.ndarray, window: int) -> int:
    """Pairs gensim's skip-gram trains per epoch with a fixed window: sum over positions of both sides."""
    total = 0
    for distance in range(1, window + 1):
        total += 2 * int(np.maximum(lengths - distance, 0).sum())
    return total
