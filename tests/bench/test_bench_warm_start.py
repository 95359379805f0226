"""The warm-start bench's two days: new items only on day 2, dropped ones only on day 1, a sliding window."""

from bench.bench_warm_start import WINDOW_DAYS, daily_windows
from engagement_data import synthetic


def test_day_two_slides_the_window_and_brings_new_and_dropped_items():
    day_1, day_2 = daily_windows(items=200, events=20_000, seed=3)
    items_1, items_2 = {e.item for e in day_1}, {e.item for e in day_2}
    assert items_2 - items_1 and items_1 - items_2 and len(items_1 & items_2) > 150

    def days(events):
        return {(e.ts - synthetic.START_TIMESTAMP) // synthetic.DAY_SECONDS for e in events}

    assert days(day_1) == set(range(WINDOW_DAYS))
    assert days(day_2) == set(range(1, WINDOW_DAYS + 1))
