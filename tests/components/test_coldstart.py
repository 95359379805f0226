"""The coldstart table: every engaged item gets a row, rare and held-out ones included."""

import json

import numpy as np
import pytest
from tfx import types
from tfx.types import standard_artifacts

from components.coldstart import coldstart_lib
from components.coldstart.component import ColdStartCandidates
from components.coldstart.executor import Executor, window_files
from components.cooccurrence.component import RelatedCandidates
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.session_example_gen import event_rows, session_settings, spans_lib
from components.session_example_gen.session_settings import EventSource, SessionSettings, encode_config
from formats import candidate_table

# u1 binges a, b, c; u2 a, b then (after a gap) the rare r with d; u3 engages `lonely` alone, once.
ROWS = [
    ("u1", "a", 100),
    ("u1", "b", 110),
    ("u1", "c", 120),
    ("u2", "a", 100),
    ("u2", "b", 105),
    ("u2", "r", 9000),
    ("u2", "d", 9010),
    ("u3", "lonely", 50),
]
SESSIONS = SessionSettings(min_count=2, session_gap_seconds=600, window=3)


def _events():
    return [event_rows.Event(u, i, t, n) for n, (u, i, t) in enumerate(ROWS)]


def test_rare_items_and_single_engagements_get_rows():
    table = coldstart_lib.coldstart_table(_events(), 600, 3, CooccurrenceSettings(top_n=3))
    assert table.items == ["a", "b", "c", "d", "lonely", "r"]
    assert [c for c, _ in table.candidates("r", 3)] == ["d"]  # engaged once: under any min_count
    assert table.candidates("lonely", 3) == []  # engaged, but with nothing: serving falls back to popular
    assert dict(zip(table.items, table.popularity.tolist(), strict=True))["a"] == 2
    # the gap cuts u2's history: b and r never co-occur
    assert "r" not in [c for c, _ in table.candidates("b", 3)]


def test_user_window_pairs_follow_the_window():
    pairs = coldstart_lib.user_window_pairs(_events()[:3], None, 2)
    assert pairs == [("a", "b"), ("b", "c")]


@pytest.mark.parametrize("gap", [None, 30])
@pytest.mark.parametrize("window", [2, 5])
def test_batch_pair_rows_make_the_pairs_of_the_per_user_definition(gap, window):
    """Random users with shared seconds (ties in both input orders), repeats and gaps: the same pairs."""
    rng = np.random.default_rng(window)
    users = []
    for u in range(40):
        n = int(rng.integers(0, 12))
        events = [
            (f"u{u}", f"i{int(rng.integers(0, 8))}", int(rng.integers(0, 6)) * 20, int(rng.integers(0, 2)))
            for _ in range(n)
        ]
        users.append(events)
    vocabulary = np.array(sorted({e[1].encode() for events in users for e in events}), dtype=np.bytes_)
    batch = [(f"u{u}", [events[:3], events[3:]]) for u, events in enumerate(users)]  # as GroupByKey gives
    items, labels = coldstart_lib.batch_pair_rows(batch, vocabulary, gap, window)
    got = sorted(zip(vocabulary[items].tolist(), vocabulary[labels].tolist(), strict=True))
    expected = sorted(
        (item.encode(), label.encode())
        for events in users
        for item, label in coldstart_lib.user_window_pairs(
            [event_rows.Event(*e) for e in events[::-1]], gap, window
        )
    )
    assert got == expected and got
    assert coldstart_lib.batch_pair_rows([("u", [[]])], vocabulary, gap, window)[0].size == 0


def _run(tmp_path, settings):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in ROWS))
    candidates = RelatedCandidates()
    candidates.uri = str(tmp_path / "candidates")
    source = EventSource(path=str(path))
    Executor().Do(
        {},
        {"candidates": [candidates]},
        {
            "input_path": str(path),
            "input_config": encode_config(source, SESSIONS),
            "cooccurrence_config": json.dumps({"top_n": settings.top_n}),
        },
    )
    return candidates


def test_executor_matches_the_in_memory_reference(tmp_path):
    settings = CooccurrenceSettings(top_n=3)
    candidates = _run(tmp_path, settings)
    table = candidate_table.load_table(candidates.uri)
    expected = coldstart_lib.coldstart_table(_events(), 600, 3, settings)
    assert table.items == expected.items
    np.testing.assert_array_equal(table.neighbours, expected.neighbours)
    np.testing.assert_allclose(table.scores, expected.scores, rtol=1e-6)
    np.testing.assert_array_equal(table.popularity, expected.popularity)
    assert table.meta["source"] == "coldstart"
    assert candidates.get_int_custom_property("items_without_cooccurrence") == 1  # lonely
    assert candidates.get_int_custom_property("num_items") == 6


def test_an_empty_log_fails_before_any_work(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\n")
    candidates = RelatedCandidates()
    candidates.uri = str(tmp_path / "candidates")
    with pytest.raises(ValueError, match="no rows in the input"):
        Executor().Do(
            {},
            {"candidates": [candidates]},
            {"input_path": str(path), "input_config": encode_config(EventSource(path=str(path)), SESSIONS)},
        )


def test_component_carries_sessionexamplegen_config(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\nu,a,1\n")
    examples = types.Channel(type=standard_artifacts.Examples)
    component = ColdStartCandidates(examples, EventSource(path=str(path)), SESSIONS, input_fingerprint="f")
    props = component.exec_properties
    assert session_settings.decode_config(str(path), props["input_config"])[1] == SESSIONS
    assert props["input_fingerprint"] == "f" and props["code_version"]


def test_a_span_pattern_is_read_over_the_window_sessionexamplegen_chose(tmp_path):
    """Both steps read one window: the files SessionExampleGen recorded, not whatever the pattern finds now
    (a day that arrived since, or a day outside the rolling range)."""
    days = [tmp_path / f"2024-01-0{d}" for d in (1, 2, 3)]
    for day in days:
        day.mkdir()
        (day / "events.csv").write_text("user_id,item_id,timestamp\nu,a,1\n")
    pattern = str(tmp_path / "{YYYY}-{MM}-{DD}" / "*.csv")
    chosen = tuple(str(day / "events.csv") for day in days[1:])
    selection = spans_lib.SpanSelection(pattern, (19724, 19725), (None, None), chosen, (), True)
    examples = standard_artifacts.Examples()
    examples.set_string_custom_property("span_selection", selection.to_json())
    assert window_files(pattern, [examples]) == list(chosen)
    with pytest.raises(ValueError, match="record no span selection"):
        window_files(pattern, [standard_artifacts.Examples()])
    assert window_files(str(days[0] / "events.csv"), []) == [str(days[0] / "events.csv")]
