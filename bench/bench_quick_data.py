"""bench-quick's data: a synthetic log -> sessions -> the exact skip-gram pairs both trainers see.

Sessions follow SessionExampleGen's rules (a user's events ordered by (time, item), cut where consecutive
events are more than the gap apart, consecutive repeats collapsed, sessions shorter than two dropped), done
with numpy instead of Beam so the benchmark measures training, not data preparation.

The pairs are gensim's skip-gram pairs with a fixed window (`shrink_windows=False`, `sample=0`): every
(center, context) with 1 <= |position distance| <= window inside a session, both directions. That makes the
pair count exact for both trainers, so pairs/s compare like for like.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np


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
    import pyarrow as pa
    import pyarrow.csv as pacsv

    files = sorted(glob.glob(os.path.join(events_dir, "events-*.csv")))
    if not files:
        raise FileNotFoundError(f"no events-*.csv shards in {events_dir}")
    table = pa.concat_tables([pacsv.read_csv(f) for f in files])
    user = table.column("user_id").to_numpy()
    item = table.column("item_id").to_numpy()
    ts = table.column("timestamp").to_numpy()
    order = np.lexsort((item, ts, user))
    user, item, ts = user[order], item[order], ts[order]
    new_session = np.ones(len(user), bool)
    new_session[1:] = (user[1:] != user[:-1]) | (ts[1:] - ts[:-1] > gap_seconds)
    repeat = np.zeros(len(user), bool)
    repeat[1:] = ~new_session[1:] & (item[1:] == item[:-1])
    item, new_session = item[~repeat], new_session[~repeat]
    starts = np.flatnonzero(new_session)
    lengths = np.diff(np.append(starts, len(item)))
    keep = np.repeat(lengths >= 2, lengths)
    item, lengths = item[keep], lengths[lengths >= 2]
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
