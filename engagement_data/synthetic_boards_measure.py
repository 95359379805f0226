"""Measurements of a synthetic_boards world, read back from its written files: how segmented, coarse and
drifting its boards are, how much of the tail they cover, how local its sessions are, and the session and
board co-occurrence baselines on test-sized data. Generation is in engagement_data/synthetic_boards.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from engagement_data import synthetic as syn
from engagement_data.synthetic_boards import (
    COLLECTIONS_SUBDIR,
    ITEMS_FILE,
    MANIFEST_FILE,
    SESSION_GAP_S,
    BoardsSettings,
    bridge_topics,
)


def _group_codes(*keys: np.ndarray) -> np.ndarray:
    """Dense codes of the rows' key tuples (equal tuples, equal codes)."""
    return np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)[1].reshape(-1)


def segmentation(owner: np.ndarray, board: np.ndarray, topic: np.ndarray, min_saves: int = 2) -> float:
    """Mean number of boards holding an owner's saves of one fine topic, over (owner, topic) pairs with at
    least `min_saves` saves: 1 when each interest has one board. `board` codes are global (not per owner)."""
    pair = _group_codes(owner, topic)
    saves = np.bincount(pair)
    pair_board = np.unique(np.stack([pair, board], axis=1), axis=0)
    boards = np.bincount(pair_board[:, 0], minlength=len(saves))
    counted = saves >= min_saves
    return float(boards[counted].mean()) if counted.any() else 0.0


def granularity(board: np.ndarray, topic: np.ndarray) -> float:
    """Mean number of distinct fine topics per board: 1 for boards that each hold one fine topic."""
    if not len(board):
        return 0.0
    distinct = np.unique(np.stack([board, topic], axis=1), axis=0)
    return len(distinct) / len(np.unique(board))


def _dominant(group: np.ndarray, topic: np.ndarray, groups: int) -> np.ndarray:
    """[groups] the most frequent topic of each group (ties: the smallest topic; -1 for an empty group)."""
    pairs, counts = np.unique(np.stack([group, topic], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))  # by group, then count down, then topic
    first = order[np.r_[True, pairs[order[1:], 0] != pairs[order[:-1], 0]]]
    dominant = np.full(groups, -1, dtype=np.int64)
    dominant[pairs[first, 0]] = pairs[first, 1]
    return dominant


def board_drift(board: np.ndarray, timestamp: np.ndarray, topic: np.ndarray) -> float:
    """Share of boards (>= 2 saves) whose dominant fine topic over the first half of their saves, in time
    order, differs from that of the second half (the first n // 2 saves, then the rest)."""
    codes = np.unique(board, return_inverse=True)[1].reshape(-1)
    order = np.lexsort((timestamp, codes))
    codes, topic = codes[order], topic[order]
    size = np.bincount(codes)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    second = np.arange(len(codes)) - start[codes] >= size[codes] // 2
    boards = len(size)
    first_half = _dominant(codes[~second], topic[~second], boards)
    second_half = _dominant(codes[second], topic[second], boards)
    counted = size >= 2
    return float((first_half != second_half)[counted].mean()) if counted.any() else 0.0


@dataclass(frozen=True)
class TailCoverage:
    """For the bottom popularity third of items by engagement count: how many are saved, how many engaged."""

    items: int  # items in the bottom third
    saved_share: float  # share with >= min_saves saves
    engaged_share: float  # share with >= min_engagements engagements
    min_saves: int
    min_engagements: int


def tail_coverage(
    engaged: np.ndarray, saved: np.ndarray, items: int, min_saves: int = 1, min_engagements: int = 5
) -> TailCoverage:
    """Tail items (fewest engagements; ties by id) are covered by boards when saved_share >> engaged_share."""
    engagements = np.bincount(engaged, minlength=items)
    saves = np.bincount(saved, minlength=items)
    tail = np.argsort(engagements, kind="stable")[: max(1, items // 3)]
    return TailCoverage(
        items=len(tail),
        saved_share=float((saves[tail] >= min_saves).mean()),
        engaged_share=float((engagements[tail] >= min_engagements).mean()),
        min_saves=min_saves,
        min_engagements=min_engagements,
    )


def session_order(
    user: np.ndarray, timestamp: np.ndarray, gap_s: int = SESSION_GAP_S
) -> tuple[np.ndarray, np.ndarray]:
    """(order, session): the events sorted by user and time, and each sorted event's session number (a new
    session at each user change or gap over gap_s, as SessionExampleGen splits them)."""
    order = np.lexsort((timestamp, user))
    u, t = user[order], timestamp[order]
    new = np.r_[True, (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap_s)]
    return order, np.cumsum(new) - 1


def session_locality(
    user: np.ndarray, timestamp: np.ndarray, topic: np.ndarray, bridges: np.ndarray
) -> tuple[float, float]:
    """(same, bridged): shares of consecutive in-session event pairs whose fine topics are the same, and that
    could share a home topic (both in some topic's {itself and its bridges}). Without drift and noise every
    pair is bridged, so 1 - bridged measures how far sessions leave their fine topic and its bridges."""
    order, session = session_order(user, timestamp)
    a, b = topic[order][:-1], topic[order][1:]
    inside = session[1:] == session[:-1]
    a, b = a[inside], b[inside]
    if not len(a):
        return 0.0, 0.0
    home = np.concatenate([np.arange(len(bridges))[:, None], bridges], axis=1)  # [topics, 1 + bridges]
    near = (home[a][:, :, None] == home[b][:, None, :]).any(axis=(1, 2))
    return float((a == b).mean()), float(near.mean())


def read_shards(directory: str) -> dict[str, np.ndarray]:
    """All rows of a directory of CSV or Parquet shards, column -> array (whole: for measuring test data)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tables = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.endswith(".csv"):
            types = {
                "user_id": pa.int64(),
                "board_id": pa.string(),
                "item_id": pa.int64(),
                "timestamp": pa.int64(),
            }
            convert = pacsv.ConvertOptions(column_types=types)  # an empty shard has no values to infer from
            tables.append(pacsv.read_csv(path, convert_options=convert))
        elif name.endswith(".parquet"):
            tables.append(pq.read_table(path))
    if not tables:
        raise FileNotFoundError(f"{directory}: no .csv or .parquet shards")
    table = pa.concat_tables(tables)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def read_items(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(fine topic, coarse topic) of each item id, from items.tsv."""
    rows = np.loadtxt(path, dtype=np.int64, delimiter="\t", skiprows=1, ndmin=2)
    fine = np.empty(len(rows), dtype=np.int64)
    coarse = np.empty(len(rows), dtype=np.int64)
    fine[rows[:, 0]], coarse[rows[:, 0]] = rows[:, 1], rows[:, 2]
    return fine, coarse


@dataclass(frozen=True)
class BoardsProperties:
    """The planted properties, as measured on a generated directory."""

    segmentation: float
    granularity: float
    drift: float
    tail: TailCoverage
    session_same_topic: float
    session_bridged: float


def measure(out_dir: str) -> BoardsProperties:
    """Reads a generated directory and measures segmentation, granularity, drift, tail coverage and
    session locality (see the functions of the same names)."""
    with open(os.path.join(out_dir, MANIFEST_FILE), encoding="utf-8") as f:
        settings = BoardsSettings(**json.load(f)["settings"])
    fine, _ = read_items(os.path.join(out_dir, ITEMS_FILE))
    events = read_shards(os.path.join(out_dir, syn.EVENTS_SUBDIR))
    saves = read_shards(os.path.join(out_dir, COLLECTIONS_SUBDIR))
    board_ids = saves["board_id"].astype(str)
    board = np.unique(board_ids, return_inverse=True)[1].reshape(-1)
    owner = np.char.partition(board_ids, "-b")[:, 0].astype(np.int64)
    topic = fine[saves["item_id"]]
    bridges = bridge_topics(settings.num_fine, settings.fine_per_coarse, settings.bridges)
    same, bridged = session_locality(events["user_id"], events["timestamp"], fine[events["item_id"]], bridges)
    return BoardsProperties(
        segmentation=segmentation(owner, board, topic),
        granularity=granularity(board, topic),
        drift=board_drift(board, saves["timestamp"], topic),
        tail=tail_coverage(events["item_id"], saves["item_id"], settings.items),
        session_same_topic=same,
        session_bridged=bridged,
    )


# ------------------------------------------------------------------------- co-occurrence baselines
# Held whole in memory (O(pairs)): for checking the planted world on test-sized data, not for production.


def session_pairs(
    user: np.ndarray, timestamp: np.ndarray, item: np.ndarray, window: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): items of one session at most window - 1 events apart, each pair of events once."""
    order, session = session_order(user, timestamp)
    item = item[order]
    a, b = [], []
    for offset in range(1, window):
        inside = session[offset:] == session[:-offset]
        a.append(item[:-offset][inside])
        b.append(item[offset:][inside])
    return np.concatenate(a), np.concatenate(b)


def board_pairs(board: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): items saved to one board, each pair of saves once (O(sum of board sizes squared))."""
    order = np.argsort(board, kind="stable")
    board, item = board[order], item[order]
    size = np.bincount(np.unique(board, return_inverse=True)[1].reshape(-1))
    start = np.repeat(np.cumsum(size) - size, size)  # each save's board start
    reps = np.repeat(size, size)  # each save pairs with every save of its board ...
    left = np.repeat(np.arange(len(item)), reps)
    right = np.repeat(start, reps) + np.arange(len(left)) - np.repeat(np.cumsum(reps) - reps, reps)
    later = right > left  # ... and keeps the later ones
    return item[left[later]], item[right[later]]


def top_k_precision(
    a: np.ndarray, b: np.ndarray, topic: np.ndarray, k: int = 10, normalise: bool = False
) -> np.ndarray:
    """[items] share of each item's k most co-occurring other items that are in its own topic (0 for an item
    that co-occurs with nothing). Scores are pair counts, or with `normalise` count / sqrt(n_a * n_b) (n: an
    item's pairs), which discounts popular items; ties go to the smaller item id."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    items = len(topic)
    a, b = np.concatenate([a, b]), np.concatenate([b, a])
    keep = a != b
    pair, count = np.unique(a[keep].astype(np.int64) * items + b[keep], return_counts=True)
    query, other = pair // items, pair % items
    score = count.astype(np.float64)
    if normalise:
        total = np.bincount(query, weights=score, minlength=items)
        score /= np.sqrt(total[query] * total[other])
    order = np.lexsort((other, -score, query))
    query, other = query[order], other[order]
    first = np.flatnonzero(np.r_[True, query[1:] != query[:-1]])
    rank = np.arange(len(query)) - np.repeat(first, np.diff(np.r_[first, len(query)]))
    top = rank < k
    hits = np.bincount(query[top], weights=topic[query[top]] == topic[other[top]], minlength=items)
    return hits / k


def popularity_thirds(engagements: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item ids of the head, torso and tail thirds by engagement count (ties by id)."""
    head, torso, tail = np.array_split(np.argsort(-engagements, kind="stable"), 3)
    return head, torso, tail


def distinct_neighbours(a: np.ndarray, b: np.ndarray, items: int) -> np.ndarray:
    """[items] how many other items each item co-occurs with: whether a top-k list can be filled at all."""
    a, b = np.concatenate([a, b]), np.concatenate([b, a])
    keep = a != b
    pair = np.unique(a[keep].astype(np.int64) * items + b[keep])
    return np.bincount(pair // items, minlength=items)
