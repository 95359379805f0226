"""Synthetic engagement logs at any scale, with a planted ground truth of related items.

The model of the log:
- items are split into latent topics of `topic_size` items (a random partition, so a topic mixes head and
  tail items); the planted related items of an item are the other items of its topic;
- item popularity is Zipf (`weight ~ 1 / rank**zipf_exponent`, ranks a random permutation of the items);
  a topic's popularity is the sum of its items' weights;
- a session starts in a topic drawn by popularity; each following event drifts to a new topic (drawn by
  popularity) with probability `drift`, and with probability `noise` is a random popular item instead of an
  item of the current topic; items inside a topic are drawn by their popularity;
- every session belongs to one user and lives inside that user's own day, so sessions of one user are more
  than a session gap apart and `SessionExampleGen` (gap 1800 s) recovers them.

Generation is chunked and vectorised with numpy (a chunk of sessions at a time, written at once), so memory
is bounded by the chunk size and the item tables (O(items)), never by the number of events. Everything is a
pure function of the settings and the seed: the same settings give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

COLUMNS = ("user_id", "item_id", "timestamp")
GROUND_TRUTH_FILE = "ground_truth.tsv"  # item_id<TAB>related ids separated by spaces
MANIFEST_FILE = "synthetic.json"  # the settings and counts of a generated directory
EVENTS_SUBDIR = "events"  # shards live here, so the directory can be handed to --events as is
FORMATS = ("csv", "parquet")
START_TIMESTAMP = 1_700_000_000  # Unix seconds of day 0
DAY_SECONDS = 86_400
MAX_SESSION_START_S = 40_000  # a session starts within its day's first ~11 hours ...
MAX_GAP_S = 240  # ... with events 1..MAX_GAP_S seconds apart; MAX_SESSION_LENGTH * MAX_GAP_S < the rest of it
MAX_SESSION_LENGTH = 60
SESSIONS_PER_USER = 8  # each user has this many sessions, one per day


@dataclass(frozen=True)
class SyntheticSettings:
    """What to generate; defaults give sessions that look like engagement logs (mean ~10 events)."""

    items: int
    events: int
    seed: int = 0
    shards: int = 4
    topic_size: int = 10  # items per latent topic: each item has topic_size - 1 planted related items
    zipf_exponent: float = 0.8
    mean_session_length: float = 10.0
    drift: float = 0.1  # per event: probability to move to another topic
    noise: float = 0.05  # per event: probability of a popularity-drawn item from any topic
    chunk_events: int = 1_000_000  # events generated (and held) at a time
    file_format: str = "csv"

    def __post_init__(self) -> None:
        for name in ("items", "events", "shards", "topic_size", "chunk_events"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SyntheticSettings.{name} must be an integer >= 1, got {value!r}")
        if self.topic_size < 2 or self.items < 2 * self.topic_size:
            raise ValueError(
                "SyntheticSettings: need topic_size >= 2 and items >= 2 * topic_size, "
                f"got items={self.items}, topic_size={self.topic_size}"
            )
        if not 2.0 <= self.mean_session_length <= MAX_SESSION_LENGTH / 2:
            raise ValueError(
                f"SyntheticSettings.mean_session_length must be in [2, {MAX_SESSION_LENGTH // 2}], "
                f"got {self.mean_session_length}"
            )
        for name in ("drift", "noise"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"SyntheticSettings.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.zipf_exponent < 0:
            raise ValueError(f"SyntheticSettings.zipf_exponent must be >= 0, got {self.zipf_exponent}")
        if self.file_format not in FORMATS:
            raise ValueError(
                f"SyntheticSettings.file_format must be one of {FORMATS}, got {self.file_format!r}"
            )

    @property
    def num_topics(self) -> int:
        return self.items // self.topic_size  # the last topic takes the remainder


@dataclass(frozen=True)
class World:
    """The latent structure: which topic each item is in and how popular items and topics are."""

    item_topic: np.ndarray  # [items] topic of each item
    item_weight: np.ndarray  # [items] Zipf weight (unnormalised)
    items_by_topic: np.ndarray  # [items] item ids grouped by topic (topic 0's items first)
    topic_start: np.ndarray  # [topics + 1] offsets of each topic's items in items_by_topic
    cumulative_weight: np.ndarray  # [items] cumulative weight along items_by_topic (normalised to 1)


def make_world(settings: SyntheticSettings) -> World:
    """Random topics and Zipf popularity, from the settings' seed alone."""
    rng = np.random.default_rng([settings.seed, 0])
    n, topics = settings.items, settings.num_topics
    ranks = rng.permutation(n)
    item_weight = 1.0 / np.power(ranks + 1.0, settings.zipf_exponent)
    item_topic = np.minimum(rng.permutation(n) // settings.topic_size, topics - 1)
    return world_from(item_topic, item_weight, topics)


def world_from(item_topic: np.ndarray, item_weight: np.ndarray, topics: int) -> World:
    """The sampling tables of any partition of the items into `topics` groups, drawn by `item_weight`."""
    items_by_topic = np.argsort(item_topic, kind="stable")
    topic_start = np.searchsorted(item_topic[items_by_topic], np.arange(topics + 1))
    cumulative = np.cumsum(item_weight[items_by_topic])
    return World(item_topic, item_weight, items_by_topic, topic_start, cumulative / cumulative[-1])


def planted_related(world: World) -> Iterator[tuple[int, np.ndarray]]:
    """(item, its related items) for every item: the other items of its topic, in id order."""
    for topic in range(len(world.topic_start) - 1):
        members = np.sort(world.items_by_topic[world.topic_start[topic] : world.topic_start[topic + 1]])
        for item in members:
            yield int(item), members[members != item]


def _sample_in_topics(world: World, topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One popularity-weighted item from each given topic (inverse CDF on the topic's slice)."""
    cdf = world.cumulative_weight
    low = np.where(world.topic_start[topics] > 0, cdf[world.topic_start[topics] - 1], 0.0)
    high = cdf[world.topic_start[topics + 1] - 1]
    u = low + rng.random(len(topics)) * (high - low)
    slot = np.searchsorted(cdf, u, side="right")
    slot = np.clip(slot, world.topic_start[topics], world.topic_start[topics + 1] - 1)
    return world.items_by_topic[slot]


def _sample_popular(world: World, count: int, rng: np.random.Generator) -> np.ndarray:
    """Items drawn by global popularity."""
    slot = np.searchsorted(world.cumulative_weight, rng.random(count), side="right")
    return world.items_by_topic[np.minimum(slot, len(world.items_by_topic) - 1)]


def _topic_of_popularity(world: World, count: int, rng: np.random.Generator) -> np.ndarray:
    return world.item_topic[_sample_popular(world, count, rng)]


Retopic = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Chunk:
    """Events of whole sessions: parallel arrays, plus which shard each event goes to."""

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    shard: np.ndarray


def session_lengths(settings: SyntheticSettings, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths (2 + geometric, capped) of sessions summing to exactly `budget` events (budget >= 2)."""
    p = 1.0 / (settings.mean_session_length - 1.0)
    estimate = int(budget / settings.mean_session_length * 1.2) + 2
    lengths = np.minimum(2 + rng.geometric(p, size=estimate) - 1, MAX_SESSION_LENGTH)
    ends = np.cumsum(lengths)
    count = int(np.searchsorted(ends, budget, side="left")) + 1
    while count > len(lengths):  # rare: the estimate was short
        more = np.minimum(2 + rng.geometric(p, size=estimate) - 1, MAX_SESSION_LENGTH)
        lengths = np.concatenate([lengths, more])
        ends = np.cumsum(lengths)
        count = int(np.searchsorted(ends, budget, side="left")) + 1
    lengths = lengths[:count].copy()
    lengths[-1] -= ends[count - 1] - budget  # trim the last session to hit the budget exactly
    if lengths[-1] < 2:  # fold a 1-event tail into the previous session (or make it 2 long)
        if count > 1:
            lengths[-2] += lengths[-1]
            lengths = lengths[:-1]
        else:
            lengths[-1] = 2
    return lengths


def generate_chunk(
    world: World,
    settings: SyntheticSettings,
    first_session: int,
    lengths: np.ndarray,
    rng: np.random.Generator,
    retopic: Retopic | None = None,
) -> Chunk:
    """Events of sessions first_session .. first_session + len(lengths) - 1.

    `retopic(topics, rng)`, when given, moves some events' topics before their items are drawn (the boards
    world sends some to a bridge topic); without it no random numbers are spent on it.
    """
    n_sessions, total = len(lengths), int(lengths.sum())
    session = np.repeat(np.arange(n_sessions), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(total) - starts[session]
    # Topic segments: a new segment at each session start and at each drift.
    new_segment = (position == 0) | (rng.random(total) < settings.drift)
    segment = np.cumsum(new_segment) - 1
    topic = _topic_of_popularity(world, int(segment[-1]) + 1, rng)[segment]
    if retopic is not None:
        topic = retopic(topic, rng)
    item = _sample_in_topics(world, topic, rng)
    noisy = rng.random(total) < settings.noise
    item[noisy] = _sample_popular(world, int(noisy.sum()), rng)

    global_session = first_session + np.arange(n_sessions)
    user = (global_session // SESSIONS_PER_USER)[session]
    day = global_session % SESSIONS_PER_USER
    session_start = START_TIMESTAMP + day * DAY_SECONDS + rng.integers(0, MAX_SESSION_START_S, n_sessions)
    gaps = rng.integers(1, MAX_GAP_S + 1, total)
    gaps[starts] = 0
    offsets = np.cumsum(gaps)
    offsets -= offsets[starts][session]
    timestamp = session_start[session] + offsets
    return Chunk(user, item, timestamp, user % settings.shards)


class ShardWriters:
    """One open writer per shard; columns go out as Arrow tables (fast CSV or Parquet).

    `prefix` names the files (`<prefix>-00000-of-00004.csv`); `columns` are (name, Arrow type alias) pairs.
    """

    def __init__(
        self,
        directory: str,
        settings: SyntheticSettings,
        prefix: str = "events",
        columns: Sequence[tuple[str, str]] = tuple((c, "int64") for c in COLUMNS),
    ):
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self._pa = pa
        self.schema = pa.schema([(name, pa.type_for_alias(alias)) for name, alias in columns])
        self.paths = [
            os.path.join(directory, f"{prefix}-{i:05d}-of-{settings.shards:05d}.{settings.file_format}")
            for i in range(settings.shards)
        ]
        if settings.file_format == "csv":
            options = pacsv.WriteOptions(include_header=True)
            self._writers = [pacsv.CSVWriter(p, self.schema, write_options=options) for p in self.paths]
        else:
            self._writers = [pq.ParquetWriter(p, self.schema) for p in self.paths]

    def write(self, chunk: Chunk) -> None:
        self.write_columns([chunk.user, chunk.item, chunk.timestamp], chunk.shard)

    def write_columns(self, columns: Sequence[np.ndarray], shard_of_row: np.ndarray) -> None:
        """Each row to its shard's file, in the rows' order."""
        order = np.argsort(shard_of_row, kind="stable")
        bounds = np.searchsorted(shard_of_row[order], np.arange(len(self._writers) + 1))
        for shard, writer in enumerate(self._writers):
            rows = order[bounds[shard] : bounds[shard + 1]]
            if len(rows):
                table = self._pa.Table.from_arrays([column[rows] for column in columns], schema=self.schema)
                writer.write_table(table)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


@dataclass(frozen=True)
class SyntheticLog:
    """Where a generated log went and what it holds."""

    events_dir: str
    shards: tuple[str, ...]
    ground_truth: str
    manifest: str
    events: int
    sessions: int
    users: int


def write_ground_truth(world: World, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("item_id\trelated_item_ids\n")
        for item, related in planted_related(world):
            f.write(f"{item}\t{' '.join(map(str, related.tolist()))}\n")
    return path


def empty_shard_dir(directory: str, prefix: str) -> str:
    """Creates `directory`; refuses one already holding `<prefix>-*` shards (a rerun must not mix logs)."""
    os.makedirs(directory, exist_ok=True)
    stale = [f for f in os.listdir(directory) if f.startswith(f"{prefix}-")]
    if stale:
        noun = "event" if prefix == "events" else prefix
        raise FileExistsError(
            f"{directory} already holds {len(stale)} {noun} shard(s), e.g. {stale[0]}; "
            "use an empty --out directory"
        )
    return directory


def write_events(
    world: World, settings: SyntheticSettings, events_dir: str, retopic: Retopic | None = None
) -> tuple[tuple[str, ...], int, int]:
    """Writes the sessions' events to `events_dir` a chunk at a time: (shard paths, events, sessions)."""
    rng = np.random.default_rng([settings.seed, 1])
    writers = ShardWriters(events_dir, settings)
    written = sessions = 0
    try:
        while written < settings.events:
            budget = min(settings.chunk_events, settings.events - written)
            if settings.events - written - budget == 1:  # never leave a single event for the last chunk
                budget += 1
            lengths = session_lengths(settings, max(budget, 2), rng)
            writers.write(generate_chunk(world, settings, sessions, lengths, rng, retopic))
            written += int(lengths.sum())
            sessions += len(lengths)
    finally:
        writers.close()
    return tuple(writers.paths), written, sessions


def generate(settings: SyntheticSettings, out_dir: str) -> SyntheticLog:
    """Writes `out_dir/events/*` (sharded by user), `ground_truth.tsv` and `synthetic.json`."""
    events_dir = empty_shard_dir(os.path.join(out_dir, EVENTS_SUBDIR), "events")
    world = make_world(settings)
    shards, written, sessions = write_events(world, settings, events_dir)
    ground_truth = write_ground_truth(world, os.path.join(out_dir, GROUND_TRUTH_FILE))
    manifest = write_manifest(
        os.path.join(out_dir, MANIFEST_FILE),
        settings,
        written,
        sessions,
        topics=settings.num_topics,
        columns=list(COLUMNS),
    )
    return SyntheticLog(events_dir, shards, ground_truth, manifest, written, sessions, users_for(sessions))


def users_for(sessions: int) -> int:
    """Users of a generated log: SESSIONS_PER_USER sessions each, the last user possibly fewer."""
    return (sessions + SESSIONS_PER_USER - 1) // SESSIONS_PER_USER


def write_manifest(path: str, settings: Any, events: int, sessions: int, **more: Any) -> str:
    """The generated directory's JSON record: its settings and counts, plus what the generator adds."""
    record = {
        "settings": dataclasses.asdict(settings),
        "events": events,
        "sessions": sessions,
        "users": users_for(sessions),
        **more,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    return path


def read_ground_truth(path: str) -> dict[str, list[str]]:
    """item id -> planted related item ids (strings, as the pipeline sees ids)."""
    truth: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n")
        if header != "item_id\trelated_item_ids":
            raise ValueError(f"{path}: header {header!r}, expected 'item_id<TAB>related_item_ids'")
        for line_no, line in enumerate(f, start=2):
            item, sep, related = line.rstrip("\n").partition("\t")
            if not sep or not item:
                raise ValueError(f"{path} line {line_no}: expected 'item_id<TAB>related ids', got {line!r}")
            truth[item] = related.split()
    return truth


def planted_recall(
    neighbours: Mapping[str, Sequence[str]],
    truth: Mapping[str, Sequence[str]],
    k: int,
    vocabulary: set[str] | None = None,
) -> float:
    """Mean over queried items of |top-k neighbours ∩ planted related| / min(k, |planted related|).

    `neighbours[item]` is ranked (best first; the item itself is skipped if present). Only items with
    planted related items count. With `vocabulary`, related items outside it are ignored (a model cannot
    retrieve an item it never saw), and items left with none do not count. Returns 0.0 when nothing counts.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    total, counted = 0.0, 0
    for item, ranked in neighbours.items():
        related = set(truth.get(item, ()))
        if vocabulary is not None:
            related &= vocabulary
        related.discard(item)
        if not related:
            continue
        top = [r for r in ranked if r != item][:k]
        total += len(related.intersection(top)) / min(k, len(related))
        counted += 1
    return total / counted if counted else 0.0
