"""Synthetic sessions *and* boards over one planted world, to compare session and board co-occurrence.

Pinterest's Pin2Vec post finds session neighbours more relevant than board co-occurrence because boards are
segmented (one interest split over several boards), coarse (a board spans a broad topic made of many fine
ones) and drift (a board's topic changes over time), while boards still cover long-tail items that are sparse
in engagement. No public log has both, so this plants them where each property is a knob and can be measured:

- items are partitioned into fine topics of `fine_topic_size` items (the planted truth, as in synthetic.py)
  and fine topics into coarse topics of `fine_per_coarse`; each fine topic has one or two *bridge* fine topics
  in its coarse topic (neighbours on a ring), like "wine bottles" and "wine cocktails";
- sessions are synthetic.py's (Zipf engagement popularity, drift, noise), except that with `bridge_prob` an
  event is drawn from a bridge of the session's current fine topic;
- each of `users` board owners has `boards_per_user` boards; consecutive boards share one fine interest,
  `segmentation` boards per interest (interests distinct, drawn by save popularity); a `coarse_board_share` of
  boards save from the interest's whole coarse topic; a `board_drift_share` of boards switch to another topic
  halfway through their saves (in save-time order); `save_noise` saves are any item;
- saves follow the same popularity order as engagement but a flatter Zipf (`save_zipf_exponent`), so items
  rarely engaged are still saved.

Generation is chunked (sessions as in synthetic.py, boards a chunk of owners at a time) and a pure function of
the settings: the same settings give byte-identical files. The measurements
(engagement_data/synthetic_boards_measure.py) read the written files whole.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from engagement_data import synthetic as syn

COLLECTIONS_SUBDIR = "collections"  # board saves: board_id, item_id, timestamp
COLLECTION_COLUMNS = (("board_id", "string"), ("item_id", "int64"), ("timestamp", "int64"))
ITEMS_FILE = "items.tsv"  # item_id<TAB>fine_topic<TAB>coarse_topic
MANIFEST_FILE = "synthetic_boards.json"
EVENTS_PER_OWNER = 750  # with users=None: one board owner per this many events
BOARD_SPAN_S = 180 * syn.DAY_SECONDS  # a board is created within the first ~6 months ...
MAX_SAVE_GAP_S = 3 * syn.DAY_SECONDS  # ... and saved to every 1 s .. 3 days
SESSION_GAP_S = 1800  # the gap SessionExampleGen splits sessions at


@dataclass(frozen=True)
class BoardsSettings:
    """What to generate. At ~60 events an item (300k events, 5k items) the defaults make board co-occurrence
    lose to session co-occurrence on head and torso items and fill the tail that sessions leave sparse."""

    items: int
    events: int
    seed: int = 0
    shards: int = 4
    fine_topic_size: int = 10  # the planted truth: each item's related items are the rest of its fine topic
    fine_per_coarse: int = 8  # fine topics per coarse (broad) topic
    bridges: int = 2  # bridge fine topics per fine topic (1 or 2), inside its coarse topic
    bridge_prob: float = 0.1  # per event: drawn from a bridge of the session's fine topic
    zipf_exponent: float = 1.2  # engagement popularity: steep, so tail items are sparse in sessions
    mean_session_length: float = 10.0
    drift: float = 0.05  # per event: the session moves to another fine topic
    noise: float = 0.02  # per event: any item, by engagement popularity
    users: int | None = None  # board owners; None: one per EVENTS_PER_OWNER events
    boards_per_user: int = 8
    saves_per_board: int = 12  # mean; sizes are uniform in [max(2, ceil(s / 2)), 2s - that]
    segmentation: int = 2  # boards per fine interest of an owner
    coarse_board_share: float = 0.6  # boards saving from a whole coarse topic
    board_drift_share: float = 0.3  # boards switching topic halfway through their saves
    save_zipf_exponent: float = 0.5  # save popularity: flatter than engagement, so tail items get saved
    save_noise: float = 0.02  # per save: any item, by save popularity
    chunk_events: int = 1_000_000  # events (and about as many saves) generated and held at a time
    file_format: str = "csv"

    def __post_init__(self) -> None:
        counts = ("items", "events", "shards", "fine_topic_size", "fine_per_coarse", "boards_per_user")
        for name in (*counts, "saves_per_board", "segmentation", "chunk_events"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BoardsSettings.{name} must be an integer >= 1, got {value!r}")
        if self.users is not None and (
            not isinstance(self.users, int) or isinstance(self.users, bool) or self.users < 1
        ):
            raise ValueError(f"BoardsSettings.users must be None or an integer >= 1, got {self.users!r}")
        if self.fine_topic_size < 2 or self.fine_per_coarse < 2:
            raise ValueError(
                "BoardsSettings: need fine_topic_size >= 2 and fine_per_coarse >= 2, "
                f"got {self.fine_topic_size} and {self.fine_per_coarse}"
            )
        if self.items < self.fine_topic_size * self.fine_per_coarse:
            raise ValueError(
                "BoardsSettings: need items >= fine_topic_size * fine_per_coarse (one coarse topic), "
                f"got items={self.items}, fine_topic_size={self.fine_topic_size}, "
                f"fine_per_coarse={self.fine_per_coarse}"
            )
        if self.bridges not in (1, 2):
            raise ValueError(f"BoardsSettings.bridges must be 1 or 2, got {self.bridges!r}")
        if self.saves_per_board < 2:
            raise ValueError(f"BoardsSettings.saves_per_board must be >= 2, got {self.saves_per_board}")
        if self.segmentation > self.boards_per_user:
            raise ValueError(
                f"BoardsSettings.segmentation ({self.segmentation}) must be <= boards_per_user "
                f"({self.boards_per_user})"
            )
        if not 2.0 <= self.mean_session_length <= syn.MAX_SESSION_LENGTH / 2:
            raise ValueError(
                f"BoardsSettings.mean_session_length must be in [2, {syn.MAX_SESSION_LENGTH // 2}], "
                f"got {self.mean_session_length}"
            )
        for name in ("bridge_prob", "drift", "noise", "save_noise"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BoardsSettings.{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("coarse_board_share", "board_drift_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"BoardsSettings.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("zipf_exponent", "save_zipf_exponent"):
            if getattr(self, name) < 0:
                raise ValueError(f"BoardsSettings.{name} must be >= 0, got {getattr(self, name)}")
        if self.file_format not in syn.FORMATS:
            raise ValueError(
                f"BoardsSettings.file_format must be one of {syn.FORMATS}, got {self.file_format!r}"
            )

    @property
    def engagement(self) -> syn.SyntheticSettings:
        """The session side, as synthetic.py's settings (fine topics are its topics)."""
        return syn.SyntheticSettings(
            items=self.items,
            events=self.events,
            seed=self.seed,
            shards=self.shards,
            topic_size=self.fine_topic_size,
            zipf_exponent=self.zipf_exponent,
            mean_session_length=self.mean_session_length,
            drift=self.drift,
            noise=self.noise,
            chunk_events=self.chunk_events,
            file_format=self.file_format,
        )

    @property
    def num_fine(self) -> int:
        return self.items // self.fine_topic_size  # the last fine topic takes the remainder

    @property
    def num_coarse(self) -> int:
        return self.num_fine // self.fine_per_coarse  # the last coarse topic takes the remainder

    @property
    def owners(self) -> int:
        return self.users if self.users is not None else max(1, self.events // EVENTS_PER_OWNER)

    @property
    def board_sizes(self) -> tuple[int, int]:
        """(smallest, largest) board: uniform between them, with mean saves_per_board."""
        low = max(2, math.ceil(self.saves_per_board / 2))
        return low, 2 * self.saves_per_board - low


@dataclass(frozen=True)
class BoardsWorld:
    """The planted structure: fine and coarse topics, bridges, and engagement and save popularity."""

    engaged: syn.World  # fine topics, engagement popularity: what sessions draw from
    saved: syn.World  # fine topics, save popularity: what fine boards draw from
    saved_coarse: syn.World  # coarse topics, save popularity: what coarse boards draw from
    fine_coarse: np.ndarray  # [fine topics] coarse topic of each fine topic
    bridges: np.ndarray  # [fine topics, bridges] bridge fine topics of each fine topic


def bridge_topics(num_fine: int, fine_per_coarse: int, bridges: int) -> np.ndarray:
    """[num_fine, bridges]: each fine topic's neighbours on the ring of its coarse topic's fine topics.

    Two bridges: both ring neighbours. One: its partner in pairs (0, 1), (2, 3), ... (the odd one out of an
    odd coarse topic pairs with the one before it). Coarse topic c holds fine topics c * fine_per_coarse
    onwards (the last coarse topic takes the remainder); fine topic ids are random in item space.
    """
    fine = np.arange(num_fine)
    num_coarse = num_fine // fine_per_coarse
    coarse = np.minimum(fine // fine_per_coarse, num_coarse - 1)
    first = coarse * fine_per_coarse
    size = np.where(coarse == num_coarse - 1, num_fine - first, fine_per_coarse)
    position = fine - first
    if bridges == 2:
        return np.stack([first + (position - 1) % size, first + (position + 1) % size], axis=1)
    partner = position ^ 1
    partner = np.where(partner >= size, position - 1, partner)
    return (first + partner)[:, None]


def make_boards_world(settings: BoardsSettings) -> BoardsWorld:
    """synthetic.py's world (fine topics, Zipf engagement) plus coarse topics, bridges and save popularity."""
    engaged = syn.make_world(settings.engagement)
    # Save popularity keeps the engagement order (by rank) with a flatter exponent.
    rank = np.empty(settings.items, dtype=np.int64)
    rank[np.argsort(-engaged.item_weight, kind="stable")] = np.arange(settings.items)
    save_weight = 1.0 / np.power(rank + 1.0, settings.save_zipf_exponent)
    fine_coarse = np.minimum(
        np.arange(settings.num_fine) // settings.fine_per_coarse, settings.num_coarse - 1
    )
    return BoardsWorld(
        engaged=engaged,
        saved=syn.world_from(engaged.item_topic, save_weight, settings.num_fine),
        saved_coarse=syn.world_from(fine_coarse[engaged.item_topic], save_weight, settings.num_coarse),
        fine_coarse=fine_coarse,
        bridges=bridge_topics(settings.num_fine, settings.fine_per_coarse, settings.bridges),
    )


def to_bridges(
    bridges: np.ndarray, bridge_prob: float, topic: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Moves each event's topic to one of its bridges with probability bridge_prob (synthetic.Retopic)."""
    moved = np.flatnonzero(rng.random(len(topic)) < bridge_prob)
    side = rng.integers(0, bridges.shape[1], len(moved))
    topic = topic.copy()
    topic[moved] = bridges[topic[moved], side]
    return topic


def _later_repeats(rows: np.ndarray) -> np.ndarray:
    """Mask of the entries of each row equal to an earlier entry of the same row."""
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    repeat_sorted = np.zeros(rows.shape, dtype=bool)
    repeat_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    repeat = np.zeros(rows.shape, dtype=bool)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    return repeat


def distinct_interests(world: syn.World, owners: int, per_owner: int, rng: np.random.Generator) -> np.ndarray:
    """[owners, per_owner] topics by popularity, distinct within an owner (redrawn; a rare repeat may stay).

    Redrawing repeats keeps memory at O(owners * per_owner), whatever the number of topics.
    """
    topics = syn._topic_of_popularity(world, owners * per_owner, rng).reshape(owners, per_owner)
    for _ in range(20):
        repeat = _later_repeats(topics)
        if not repeat.any():
            break
        topics[repeat] = syn._topic_of_popularity(world, int(repeat.sum()), rng)
    return topics


def _other_topic(topic: np.ndarray, drawn: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`drawn`, except where it equals `topic`: there a uniformly drawn different topic (of `count`)."""
    same = drawn == topic
    shift = 1 + rng.integers(0, max(count - 1, 1), int(same.sum()))
    drawn = drawn.copy()
    drawn[same] = (topic[same] + shift) % count
    return drawn


@dataclass(frozen=True)
class Saves:
    """Saves of whole boards, each board's in time order: parallel arrays."""

    owner: np.ndarray
    board: np.ndarray  # board index k within its owner: the board is named f"{owner}-b{k}"
    item: np.ndarray
    timestamp: np.ndarray


def generate_saves(
    world: BoardsWorld, settings: BoardsSettings, first_owner: int, owners: int, rng: np.random.Generator
) -> Saves:
    """The saves of owners first_owner .. first_owner + owners - 1."""
    per_owner, per_interest = settings.boards_per_user, settings.segmentation
    interests = distinct_interests(world.saved, owners, -(-per_owner // per_interest), rng)
    fine = interests[:, np.arange(per_owner) // per_interest].ravel()  # each board's fine interest
    boards = len(fine)
    coarse_board = rng.random(boards) < settings.coarse_board_share
    drifting = rng.random(boards) < settings.board_drift_share
    # A drifting board moves to another topic of its own grain (another fine topic, or coarse topic).
    later = syn._topic_of_popularity(world.saved, boards, rng)
    later_fine = _other_topic(fine, later, settings.num_fine, rng)
    later_coarse = _other_topic(world.fine_coarse[fine], world.fine_coarse[later], settings.num_coarse, rng)

    low, high = settings.board_sizes
    size = rng.integers(low, high + 1, boards)
    board_of_save = np.repeat(np.arange(boards), size)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    second_half = np.arange(len(board_of_save)) - start[board_of_save] >= size[board_of_save] // 2
    moved = drifting[board_of_save] & second_half
    topic_fine = np.where(moved, later_fine[board_of_save], fine[board_of_save])
    topic_coarse = np.where(moved, later_coarse[board_of_save], world.fine_coarse[fine][board_of_save])
    wide = coarse_board[board_of_save]
    item = np.empty(len(board_of_save), dtype=np.int64)
    item[~wide] = syn._sample_in_topics(world.saved, topic_fine[~wide], rng)
    item[wide] = syn._sample_in_topics(world.saved_coarse, topic_coarse[wide], rng)
    noisy = rng.random(len(item)) < settings.save_noise
    item[noisy] = syn._sample_popular(world.saved, int(noisy.sum()), rng)

    created = syn.START_TIMESTAMP + rng.integers(0, BOARD_SPAN_S, boards)
    gaps = rng.integers(1, MAX_SAVE_GAP_S + 1, len(item))
    gaps[start] = 0
    offsets = np.cumsum(gaps)
    offsets -= offsets[start][board_of_save]
    owner = first_owner + board_of_save // per_owner
    return Saves(owner, board_of_save % per_owner, item, created[board_of_save] + offsets)


def write_saves(
    world: BoardsWorld, settings: BoardsSettings, collections_dir: str
) -> tuple[tuple[str, ...], int]:
    """Writes every owner's boards to `collections_dir` (sharded by owner): (shard paths, saves)."""
    rng = np.random.default_rng([settings.seed, 2])
    engagement = settings.engagement
    writers = syn.ShardWriters(
        collections_dir, engagement, prefix=COLLECTIONS_SUBDIR, columns=COLLECTION_COLUMNS
    )
    per_chunk = max(1, settings.chunk_events // (settings.boards_per_user * settings.board_sizes[1]))
    written = 0
    try:
        for first in range(0, settings.owners, per_chunk):
            saves = generate_saves(world, settings, first, min(per_chunk, settings.owners - first), rng)
            board_id = np.char.add(np.char.add(saves.owner.astype(str), "-b"), saves.board.astype(str))
            writers.write_columns([board_id, saves.item, saves.timestamp], saves.owner % settings.shards)
            written += len(saves.item)
    finally:
        writers.close()
    return tuple(writers.paths), written


def write_items(world: BoardsWorld, path: str) -> str:
    fine = world.engaged.item_topic.tolist()
    coarse = world.fine_coarse[world.engaged.item_topic].tolist()
    with open(path, "w", encoding="utf-8") as f:
        f.write("item_id\tfine_topic\tcoarse_topic\n")
        f.writelines(f"{i}\t{t}\t{c}\n" for i, (t, c) in enumerate(zip(fine, coarse, strict=True)))
    return path


@dataclass(frozen=True)
class BoardsLog:
    """Where a generated world went and what it holds."""

    events_dir: str
    collections_dir: str
    ground_truth: str
    items: str
    manifest: str
    events: int
    sessions: int
    saves: int
    boards: int
    owners: int


def generate(settings: BoardsSettings, out_dir: str) -> BoardsLog:
    """Writes events/ and collections/ shards, ground_truth.tsv, items.tsv and synthetic_boards.json."""
    events_dir = syn.empty_shard_dir(os.path.join(out_dir, syn.EVENTS_SUBDIR), "events")
    collections_dir = syn.empty_shard_dir(os.path.join(out_dir, COLLECTIONS_SUBDIR), COLLECTIONS_SUBDIR)
    world = make_boards_world(settings)
    retopic = functools.partial(to_bridges, world.bridges, settings.bridge_prob)
    event_shards, events, sessions = syn.write_events(world.engaged, settings.engagement, events_dir, retopic)
    save_shards, saves = write_saves(world, settings, collections_dir)
    ground_truth = syn.write_ground_truth(world.engaged, os.path.join(out_dir, syn.GROUND_TRUTH_FILE))
    items = write_items(world, os.path.join(out_dir, ITEMS_FILE))
    boards = settings.owners * settings.boards_per_user
    manifest = syn.write_manifest(
        os.path.join(out_dir, MANIFEST_FILE),
        settings,
        events,
        sessions,
        saves=saves,
        boards=boards,
        board_owners=settings.owners,
        fine_topics=settings.num_fine,
        coarse_topics=settings.num_coarse,
        event_shards=[os.path.basename(p) for p in event_shards],
        collection_shards=[os.path.basename(p) for p in save_shards],
        columns={"events": list(syn.COLUMNS), "collections": [c for c, _ in COLLECTION_COLUMNS]},
    )
    return BoardsLog(
        events_dir,
        collections_dir,
        ground_truth,
        items,
        manifest,
        events,
        sessions,
        saves,
        boards,
        settings.owners,
    )
