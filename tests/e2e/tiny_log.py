"""A small engagement log shaped like MovieLens: users binge within topics, many events share a second."""

from __future__ import annotations

import numpy as np


def topic_of(item: str, num_items=120, num_topics=6) -> int:
    """The topic `write_tiny_log` drew item `item` ("i<n>") from."""
    return next(
        t
        for t, items in enumerate(np.array_split(np.arange(num_items), num_topics))
        if int(item[1:]) in items
    )


def write_tiny_collections(path, num_users=80, num_items=120, num_topics=6, seed=1):
    """Writes a CSV (board, pin) with no time column: each user's two boards of 8 items of one topic each."""
    rng = np.random.default_rng(seed)
    topic_items = np.array_split(np.arange(num_items), num_topics)
    rows = [
        f"u{user}-b{board},i{int(item)}"
        for user in range(num_users)
        for board in range(2)
        for item in rng.choice(topic_items[int(rng.integers(num_topics))], size=8, replace=False)
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("board,pin\n" + "\n".join(rows) + "\n")


def write_tiny_log(path, num_users=80, num_items=120, num_topics=6, events_per_user=40, seed=0, bad_rows=()):
    """Writes a TSV (user_id, item_id, rating, timestamp) and returns the number of good rows."""
    rng = np.random.default_rng(seed)
    topic_items = np.array_split(np.arange(num_items), num_topics)
    rows = []
    start = 880_000_000
    for user in range(num_users):
        t = start + int(rng.integers(0, 10_000_000))
        topic = int(rng.integers(num_topics))
        for _ in range(events_per_user):
            if rng.random() < 0.15:
                topic = int(rng.integers(num_topics))
            item = int(rng.choice(topic_items[topic]))
            # Bulk rating: half the time the next event lands in the same second.
            t += 0 if rng.random() < 0.5 else int(rng.integers(1, 600))
            if rng.random() < 0.05:
                t += 5 * 3600  # a new session
            rows.append(f"u{user}\ti{item}\t{int(rng.integers(1, 6))}\t{t}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("user_id\titem_id\trating\ttimestamp\n")
        f.write("\n".join(rows + list(bad_rows)) + "\n")
    return len(rows)
