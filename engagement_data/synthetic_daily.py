"""A daily synthetic engagement log: one partition per day, a world that moves from one day to the next.

On top of `synthetic.py`'s model (items in latent topics, Zipf popularity, sessions that drift between topics,
planted related items = the other items of a topic), each day:
- every item's popularity takes a random step (`popularity_drift`: the standard deviation of its daily
  log-popularity step), so the head of the catalogue reshuffles over days;
- some topics rise and fade: each day a topic starts a trend with a small chance, which multiplies its items'
  popularity by up to e^`trend_strength`, peaking `trend_days` after it starts and fading as fast;
- `new_items_per_day` items appear, each in a random existing topic with a Zipf-drawn popularity, so the
  day's planted truth (its topic mates) includes items no earlier day had.

Users come back: each day's sessions belong to `users` recurring users, at most a few sessions each, a
session gap apart. Day d is a pure function of the seed and d (each day draws from its own random streams),
so a log of N days is the first N days of a longer one with the same settings: rerunning with a larger
`days` appends days to an existing directory and leaves the others as they were.

Layout (`<out>/YYYY-MM-DD/events.parquet` matches the span pattern `<out>/{YYYY}-{MM}-{DD}/*.parquet`):
    <out>/YYYY-MM-DD/events.{parquet,csv}     user_id, item_id, timestamp (Unix seconds inside that day, UTC)
    <out>/truth/YYYY-MM-DD/ground_truth.tsv   that day's planted related items (items alive that day)
    <out>/truth/YYYY-MM-DD/new_items.txt      the items that first appear that day
    <out>/synthetic_daily.json                the settings and per-day counts
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from engagement_data.synthetic import (
    COLUMNS,
    DAY_SECONDS,
    MAX_GAP_S,
    MAX_SESSION_LENGTH,
    SyntheticSettings,
    World,
    generate_chunk,
    session_lengths,
    world_from,
    write_ground_truth,
)

FORMATS = ("parquet", "csv")
MANIFEST_FILE = "synthetic_daily.json"
TRUTH_DIR = "truth"
NEW_ITEMS_FILE = "new_items.txt"
# A session lasts at most MAX_SESSION_LENGTH * MAX_GAP_S seconds; one slot holds a session and a gap longer
# than SessionExampleGen's default (1800 s), so a user's sessions of one day stay apart.
SESSION_SLOT_S = MAX_SESSION_LENGTH * MAX_GAP_S + 1800 + 1


@dataclass(frozen=True)
class DailySettings:
    """What to generate. `items` are alive on the first day; `new_items_per_day` more appear each day."""

    days: int
    items: int
    events_per_day: int
    new_items_per_day: int | None = None  # None: 1% of `items` (at least 1)
    users: int | None = None  # recurring users; None: one per 20 events of a day (about 2 sessions a day)
    seed: int = 0
    topic_size: int = 10
    zipf_exponent: float = 0.8
    mean_session_length: float = 10.0
    drift: float = 0.1  # per event: chance to move to another topic inside a session
    noise: float = 0.05  # per event: chance of a popular item of any topic
    popularity_drift: float = 0.3  # std of each item's daily log-popularity step
    trending_share: float = 0.1  # share of topics that start a trend over `trend_days` days
    trend_strength: float = 2.0  # a trend multiplies its topic's popularity by up to e^trend_strength
    trend_days: float = 2.0  # days from a trend's start to its peak (and from its peak to most of its fade)
    start_date: str = "2024-01-01"  # the first day (UTC)
    file_format: str = "parquet"

    def __post_init__(self) -> None:
        for name in ("days", "items", "events_per_day", "topic_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DailySettings.{name} must be an integer >= 1, got {value!r}")
        for name, least in (("new_items_per_day", 0), ("users", 1)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < least):
                raise ValueError(f"DailySettings.{name} must be None or an integer >= {least}, got {value!r}")
        if self.events_per_day < 2:
            raise ValueError(f"DailySettings.events_per_day must be >= 2, got {self.events_per_day}")
        for name in ("popularity_drift", "trending_share", "trend_strength"):
            if getattr(self, name) < 0:
                raise ValueError(f"DailySettings.{name} must be >= 0, got {getattr(self, name)}")
        if self.trend_days <= 0:
            raise ValueError(f"DailySettings.trend_days must be > 0, got {self.trend_days}")
        if self.file_format not in FORMATS:
            raise ValueError(f"DailySettings.file_format must be one of {FORMATS}, got {self.file_format!r}")
        try:
            datetime.date.fromisoformat(self.start_date)
        except ValueError as error:
            raise ValueError(
                f"DailySettings.start_date must be YYYY-MM-DD, got {self.start_date!r}"
            ) from error
        _ = self.session_settings  # the per-day settings check the rest (topic size, session length, ...)

    @property
    def new_items(self) -> int:
        return max(1, self.items // 100) if self.new_items_per_day is None else self.new_items_per_day

    @property
    def num_users(self) -> int:
        return max(2, self.events_per_day // 20) if self.users is None else self.users

    @property
    def num_topics(self) -> int:
        return self.items // self.topic_size

    @property
    def session_settings(self) -> SyntheticSettings:
        """`synthetic.py`'s settings for one day's sessions (one shard, the day's events)."""
        return SyntheticSettings(
            items=self.items,
            events=self.events_per_day,
            seed=self.seed,
            shards=1,
            topic_size=self.topic_size,
            zipf_exponent=self.zipf_exponent,
            mean_session_length=self.mean_session_length,
            drift=self.drift,
            noise=self.noise,
            chunk_events=max(self.events_per_day, 2),
        )

    def date(self, day: int) -> str:
        return (datetime.date.fromisoformat(self.start_date) + datetime.timedelta(days=day)).isoformat()

    def day_start(self, day: int) -> int:
        """Unix seconds of the day's first second (UTC)."""
        start = datetime.datetime.fromisoformat(self.start_date).replace(tzinfo=datetime.timezone.utc)
        return int(start.timestamp()) + day * DAY_SECONDS


@dataclass(frozen=True)
class DayState:
    """The world on one day: items 0 .. alive-1 exist (new items take the next ids)."""

    day: int
    item_topic: np.ndarray  # [alive]
    base_weight: np.ndarray  # [alive] Zipf weight each item was born with
    log_walk: np.ndarray  # [alive] accumulated daily log-popularity steps
    topic_trend: np.ndarray  # [topics] log multiplier of each topic's trends today
    first_new_item: int  # items first_new_item .. alive-1 appeared today (0 on the first day: all are new)

    @property
    def alive(self) -> int:
        return len(self.item_topic)

    @property
    def item_weight(self) -> np.ndarray:
        """Today's popularity of every alive item (unnormalised)."""
        return self.base_weight * np.exp(self.log_walk + self.topic_trend[self.item_topic])

    def world(self, topics: int) -> World:
        return world_from(self.item_topic, self.item_weight, topics)


def _rng(settings: DailySettings, stream: int, day: int) -> np.random.Generator:
    """Each day draws from its own streams, so day d never depends on how many days follow it."""
    return np.random.default_rng([settings.seed, 100 + stream, day])


def _zipf_weight(rank: np.ndarray, exponent: float) -> np.ndarray:
    return 1.0 / np.power(rank + 1.0, exponent)


def trend_starts(settings: DailySettings, day: int) -> np.ndarray:
    """Topics whose trend starts on `day` (each topic with chance trending_share / trend_days)."""
    chance = min(1.0, settings.trending_share / settings.trend_days)
    return np.flatnonzero(_rng(settings, 3, day).random(settings.num_topics) < chance)


def topic_trend(settings: DailySettings, day: int) -> np.ndarray:
    """[topics] log multiplier on `day`: each trend rises to trend_strength trend_days after its start, then
    fades (a Gaussian bump over days)."""
    trend = np.zeros(settings.num_topics)
    width = settings.trend_days
    for start in range(day + 1):
        lift = settings.trend_strength * math.exp(-(((day - start - width) / width) ** 2))
        trend[trend_starts(settings, start)] += lift
    return trend


def day_states(settings: DailySettings, days: int | None = None):
    """Yields the DayState of days 0 .. days-1 (default: settings.days), each from the one before."""
    topics = settings.num_topics
    init = _rng(settings, 0, 0)
    n = settings.items
    item_topic = np.minimum(init.permutation(n) // settings.topic_size, topics - 1)
    base_weight = _zipf_weight(init.permutation(n).astype(float), settings.zipf_exponent)
    log_walk = np.zeros(n)
    for day in range(settings.days if days is None else days):
        first_new = 0 if day == 0 else len(item_topic)
        if day > 0:
            births = _rng(settings, 1, day)
            k = settings.new_items
            item_topic = np.concatenate([item_topic, births.integers(0, topics, k)])
            rank = births.integers(0, settings.items, k).astype(float)
            base_weight = np.concatenate([base_weight, _zipf_weight(rank, settings.zipf_exponent)])
            steps = _rng(settings, 2, day).normal(0.0, settings.popularity_drift, len(log_walk))
            log_walk = np.concatenate([log_walk + steps, np.zeros(k)])
        yield DayState(day, item_topic, base_weight, log_walk, topic_trend(settings, day), first_new)


@dataclass(frozen=True)
class DayEvents:
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    sessions: int


def day_events(settings: DailySettings, state: DayState) -> DayEvents:
    """The day's sessions drawn from its world, placed inside the day, each user's a session slot apart."""
    rng = _rng(settings, 4, state.day)
    session_settings = settings.session_settings
    lengths = session_lengths(session_settings, settings.events_per_day, rng)
    chunk = generate_chunk(state.world(settings.num_topics), session_settings, 0, lengths, rng)
    n_sessions = len(lengths)
    session = np.repeat(np.arange(n_sessions), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    offsets = chunk.timestamp - chunk.timestamp[starts][session]  # seconds since the session's first event
    users = settings.num_users
    owner = rng.permutation(users)[np.arange(n_sessions) % users]  # sessions spread over the users
    slot = np.arange(n_sessions) // users  # a user's k-th session of the day
    slots = int(slot.max()) + 1
    slot_seconds = min(SESSION_SLOT_S, DAY_SECONDS // slots)  # more slots than fit: sessions come closer
    jitter = rng.integers(0, max(1, slot_seconds - MAX_SESSION_LENGTH * MAX_GAP_S), n_sessions)
    session_start = settings.day_start(state.day) + slot * slot_seconds + jitter
    timestamp = np.minimum(session_start[session] + offsets, settings.day_start(state.day) + DAY_SECONDS - 1)
    return DayEvents(owner[session], chunk.item, timestamp, n_sessions)


@dataclass(frozen=True)
class DailyLog:
    out_dir: str
    pattern: str  # the span pattern of the events, for pin2vec run --events
    day_files: tuple[str, ...]  # every day's events file, oldest first
    written: tuple[str, ...]  # the dates written by this call (others already existed)
    manifest: str


def _write_events(path: str, events: DayEvents, file_format: str) -> None:
    import pyarrow as pa

    columns = (events.user, events.item, events.timestamp)
    table = pa.table({name: np.asarray(c, dtype=np.int64) for name, c in zip(COLUMNS, columns, strict=True)})
    tmp = path + ".tmp"
    if file_format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, tmp)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, tmp)
    os.replace(tmp, path)  # a day appears whole or not at all: a pattern never reads half a day


def _check_existing(out_dir: str, settings: DailySettings) -> None:
    """An existing directory may only be extended with the same settings (other than `days`)."""
    path = os.path.join(out_dir, MANIFEST_FILE)
    if not os.path.exists(path):
        if any(_is_day_dir(out_dir, name) for name in os.listdir(out_dir)):
            raise FileExistsError(
                f"{out_dir} holds day partitions but no {MANIFEST_FILE}; use an empty --out"
            )
        return
    with open(path, encoding="utf-8") as f:
        previous = json.load(f)["settings"]
    mine = dataclasses.asdict(settings)
    differs = sorted(k for k in mine if k != "days" and previous.get(k) != mine[k])
    if differs:
        was = ", ".join(f"{k}={previous.get(k)!r}" for k in differs)
        raise FileExistsError(
            f"{out_dir} was generated with other settings ({was}); use the same flags to add days, "
            "or an empty --out"
        )


def _is_day_dir(out_dir: str, name: str) -> bool:
    try:
        datetime.date.fromisoformat(name)
    except ValueError:
        return False
    return os.path.isdir(os.path.join(out_dir, name))


def generate_daily(settings: DailySettings, out_dir: str) -> DailyLog:
    """Writes every day that is not there yet (events, that day's truth), then the manifest."""
    os.makedirs(out_dir, exist_ok=True)
    _check_existing(out_dir, settings)
    extension = settings.file_format
    day_files, written, days = [], [], []
    for state in day_states(settings):
        date = settings.date(state.day)
        day_dir = os.path.join(out_dir, date)
        events_file = os.path.join(day_dir, f"events.{extension}")
        day_files.append(events_file)
        record = {"date": date, "items_alive": state.alive, "new_items": state.alive - state.first_new_item}
        if not os.path.exists(events_file):
            events = day_events(settings, state)
            os.makedirs(day_dir, exist_ok=True)
            truth_dir = os.path.join(out_dir, TRUTH_DIR, date)
            os.makedirs(truth_dir, exist_ok=True)
            write_ground_truth(state.world(settings.num_topics), os.path.join(truth_dir, "ground_truth.tsv"))
            with open(os.path.join(truth_dir, NEW_ITEMS_FILE), "w", encoding="utf-8") as f:
                f.writelines(f"{i}\n" for i in range(state.first_new_item, state.alive))
            _write_events(events_file, events, settings.file_format)
            written.append(date)
            record.update(events=len(events.item), sessions=events.sessions)
        days.append(record)
    manifest = os.path.join(out_dir, MANIFEST_FILE)
    previous_days = {}
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as f:
            previous_days = {d["date"]: d for d in json.load(f).get("days", [])}
    days = [{**previous_days.get(d["date"], {}), **d} for d in days]
    with open(manifest, "w", encoding="utf-8") as f:
        json.dump({"settings": dataclasses.asdict(settings), "days": days}, f, indent=2, sort_keys=True)
    pattern = os.path.join(out_dir, "{YYYY}-{MM}-{DD}", f"*.{extension}")
    return DailyLog(out_dir, pattern, tuple(day_files), tuple(written), manifest)
