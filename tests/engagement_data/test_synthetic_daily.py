"""The daily synthetic log: new items every day, drifting popularity, trends, determinism, layout."""

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from engagement_data.synthetic import read_ground_truth
from engagement_data.synthetic_daily import (
    DailySettings,
    day_events,
    day_states,
    generate_daily,
    topic_trend,
    trend_starts,
)

SMALL = DailySettings(days=6, items=400, events_per_day=4000, new_items_per_day=20, seed=3)


def _top(weights: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-weights)[:k].tolist())


def test_new_items_appear_every_day_and_are_engaged():
    states = list(day_states(SMALL))
    assert [s.alive for s in states] == [400 + 20 * d for d in range(6)]
    for state in states[1:]:
        assert state.first_new_item == state.alive - 20
        events = day_events(SMALL, state)
        assert events.item.max() < state.alive  # only items alive that day
        assert np.isin(np.arange(state.first_new_item, state.alive), events.item).any()


def test_popularity_drifts_measurably_from_day_to_day():
    states = list(day_states(SMALL))
    first, last = states[0].item_weight, states[-1].item_weight[:400]
    # The head reshuffles: the top 40 items of the last day are not those of the first.
    assert len(_top(first, 40) & _top(last, 40)) < 36
    # And drift accumulates: day 5 is further from day 0 than day 1 is.
    day1 = states[1].item_weight[:400]
    corr = lambda a, b: np.corrcoef(np.log(a), np.log(b))[0, 1]  # noqa: E731
    assert corr(first, last) < corr(first, day1) < 1.0
    # Observed engagement follows: the most engaged items of day 0 and day 5 differ.
    counts = [np.bincount(day_events(SMALL, s).item, minlength=520)[:400] for s in (states[0], states[-1])]
    assert len(_top(counts[0], 40) & _top(counts[1], 40)) < 36


def test_topics_rise_and_fade():
    settings = DailySettings(days=12, items=400, events_per_day=100, trending_share=0.3, seed=1)
    started = trend_starts(settings, 0)
    assert len(started) > 0
    topic = int(started[0])
    lifts = [topic_trend(settings, d)[topic] for d in range(8)]
    peak = int(np.argmax(lifts))
    assert 0 < peak < 7  # rises after its start ...
    assert lifts[peak] > lifts[0] + 1.0 and lifts[peak] > lifts[7]  # ... and fades


def test_deterministic_by_seed_and_a_longer_log_extends_a_shorter_one():
    short = list(day_states(DailySettings(days=3, items=400, events_per_day=500, seed=5)))
    longer = list(day_states(DailySettings(days=5, items=400, events_per_day=500, seed=5)))
    other = list(day_states(DailySettings(days=3, items=400, events_per_day=500, seed=6)))
    settings = DailySettings(days=3, items=400, events_per_day=500, seed=5)
    for a, b in zip(short, longer[:3], strict=True):
        np.testing.assert_array_equal(a.item_weight, b.item_weight)
        np.testing.assert_array_equal(day_events(settings, a).item, day_events(settings, b).item)
    assert not np.array_equal(short[2].item_weight, other[2].item_weight)


def test_a_users_sessions_of_one_day_stay_a_session_gap_apart_inside_the_day():
    settings = DailySettings(days=2, items=400, events_per_day=3000, seed=2)
    state = list(day_states(settings))[1]
    events = day_events(settings, state)
    assert events.timestamp.min() >= settings.day_start(1)
    assert events.timestamp.max() < settings.day_start(2)
    order = np.lexsort((events.timestamp, events.user))
    user, ts = events.user[order], events.timestamp[order]
    same_user = user[1:] == user[:-1]
    gaps = np.diff(ts)[same_user]
    assert (gaps >= 0).all()
    assert len(np.unique(events.user)) > settings.num_users // 2  # users come back each day
    assert ((gaps > 1800) | (gaps <= 240)).all()  # inside a session, or a new one after a real gap


def test_generate_daily_writes_partitions_and_truth_per_day_and_appends_days(tmp_path):
    settings = DailySettings(days=3, items=200, events_per_day=600, new_items_per_day=5, seed=4)
    log = generate_daily(settings, str(tmp_path))
    assert log.written == ("2024-01-01", "2024-01-02", "2024-01-03")
    assert log.pattern == str(tmp_path / "{YYYY}-{MM}-{DD}" / "*.parquet")
    table = pq.read_table(tmp_path / "2024-01-02" / "events.parquet")
    assert table.column_names == ["user_id", "item_id", "timestamp"] and table.num_rows == 600
    truth = read_ground_truth(str(tmp_path / "truth" / "2024-01-03" / "ground_truth.tsv"))
    assert len(truth) == 210  # items alive on day 3
    new_items = (tmp_path / "truth" / "2024-01-03" / "new_items.txt").read_text().split()
    assert new_items == [str(i) for i in range(205, 210)]
    assert any(i in related for related in truth.values() for i in new_items)  # new items have topic mates
    day2 = (tmp_path / "2024-01-02" / "events.parquet").read_bytes()

    more = generate_daily(DailySettings(**{**settings.__dict__, "days": 4}), str(tmp_path))
    assert more.written == ("2024-01-04",)
    assert (tmp_path / "2024-01-02" / "events.parquet").read_bytes() == day2  # earlier days untouched
    manifest = json.loads((tmp_path / "synthetic_daily.json").read_text())
    assert [d["date"] for d in manifest["days"]] == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    assert all(d["events"] == 600 for d in manifest["days"])
    with pytest.raises(FileExistsError, match="seed=4"):
        generate_daily(DailySettings(**{**settings.__dict__, "seed": 9}), str(tmp_path))
    assert not any(name.endswith(".tmp") for _, _, files in os.walk(tmp_path) for name in files)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="days"):
        DailySettings(days=0, items=100, events_per_day=10)
    with pytest.raises(ValueError, match="start_date"):
        DailySettings(days=1, items=100, events_per_day=10, start_date="01/02/2024")
    with pytest.raises(ValueError, match="items >= 2 \\* topic_size"):
        DailySettings(days=1, items=10, events_per_day=10)
