"""The session ExampleGen's algorithm on hand-made data, without Beam."""

import itertools
import json
import os
import random
from collections import Counter

import pytest

from components.session_example_gen import event_rows, input_files, run_counts, session_settings, sessions_lib
from components.session_example_gen.event_rows import BadRow, Dropped, Event
from components.session_example_gen.session_settings import EventSource, SessionSettings
from components.session_example_gen.sessions_lib import Pair

SOURCE = EventSource(path="events.tsv")


def _row(user="u1", item="i1", ts="1000", **extra):
    return {"user_id": user, "item_id": item, "timestamp": ts, **extra}


# --- 1. rows -> events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("874965758", 874965758),
        ("874965758.9", 874965758),
        (874965758.0, 874965758),
        (7, 7),
        ("2024-01-01T00:00:00Z", 1704067200),
        ("2024-01-01T02:00:00+02:00", 1704067200),
        ("2024-01-01 00:00:00", 1704067200),  # naive means UTC
    ],
)
def test_parse_timestamp_accepts_unix_seconds_and_iso(value, expected):
    assert event_rows.parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "nan", "inf", "2024-13-01", True])
def test_parse_timestamp_rejects_garbage(value):
    with pytest.raises(ValueError, match=r"timestamp|ISO"):
        event_rows.parse_timestamp(value)


def test_parse_row_good_row_and_id_normalisation():
    assert event_rows.parse_row(_row(user=" 7 ", item=42.0, ts="2024-01-01T00:00:00Z"), SOURCE) == Event(
        "7", "42", 1704067200
    )


@pytest.mark.parametrize(
    ("row", "reason", "column"),
    [
        ({"user_id": "u", "item_id": "i"}, event_rows.MISSING_FIELD, "timestamp"),  # column absent
        (_row(item=None), event_rows.MISSING_FIELD, "item_id"),  # short CSV row
        (_row(ts="  "), event_rows.MISSING_FIELD, "timestamp"),
        (_row(ts="last tuesday"), event_rows.BAD_TIMESTAMP, "timestamp"),
        (_row(user=""), event_rows.EMPTY_ID, "user_id"),
        (_row(item="   "), event_rows.EMPTY_ID, "item_id"),
    ],
)
def test_parse_row_classifies_bad_rows(row, reason, column):
    parsed = event_rows.parse_row(row, SOURCE)
    assert isinstance(parsed, BadRow)
    assert parsed.reason == reason
    assert repr(column) in parsed.detail


def test_parse_row_weight_and_action():
    source = EventSource(path="x.csv", weight_col="rating", action_col="action", actions=("save",))
    assert event_rows.parse_row(_row(rating="0", action="save"), source) == Dropped(
        event_rows.DROPPED_NONPOSITIVE_WEIGHT
    )
    assert event_rows.parse_row(_row(rating="4", action="view"), source) == Dropped(
        event_rows.DROPPED_OTHER_ACTION
    )
    assert event_rows.parse_row(_row(rating="x", action="save"), source).reason == event_rows.BAD_WEIGHT
    assert event_rows.parse_row(_row(rating="4", action=""), source).reason == event_rows.MISSING_FIELD
    assert event_rows.parse_row(_row(rating="4", action="save"), source) == Event("u1", "i1", 1000)


def test_parse_session_line_keeps_order_and_uses_line_number_as_time():
    events = event_rows.parse_session_line("b a  c\n", "s.txt", 7)
    assert [(e.item, e.ts, e.seq) for e in events] == [("b", 7, 0), ("a", 7, 1), ("c", 7, 2)]
    assert len({e.user for e in events}) == 1


# --- 2. rare items --------------------------------------------------------------------------------


def test_min_count_drops_rare_items_over_the_whole_log():
    events = [Event(f"u{i % 3}", "common", i) for i in range(5)]
    events += [Event("u0", "rare", 1), Event("u1", "rare", 2)]
    kept, dropped = sessions_lib.filter_rare_items(events, min_count=3)
    assert {e.item for e in kept} == {"common"}
    assert dropped == 2
    kept, dropped = sessions_lib.filter_rare_items(events, min_count=2)
    assert dropped == 0 and len(kept) == 7


# --- 3. sessions ----------------------------------------------------------------------------------


def test_ties_at_the_same_second_give_the_same_session_in_any_input_order():
    events = [Event("u", "z", 100), Event("u", "b", 100), Event("u", "a", 100), Event("u", "c", 50)]
    results = {tuple(sessions_lib.sessionize(p, 1800).sessions) for p in itertools.permutations(events)}
    assert len(results) == 1
    (session,) = results.pop()
    assert session[0] == ("c", 50) and sorted(item for item, _ in session[1:]) == ["a", "b", "z"]


def test_ties_are_not_ordered_by_item_id_the_same_way_for_every_user():
    """Users who engaged with the same items in one second get different orders, so neither window pairs nor
    held-out targets follow the items' ids."""
    orders = {
        tuple(
            item
            for item, _ in sessions_lib.sessionize([Event(f"u{n}", i, 100) for i in "abcde"], None).sessions[
                0
            ]
        )
        for n in range(50)
    }
    assert len(orders) > 20
    last_items = Counter(
        sessions_lib.hold_out_last([Event(f"u{n}", i, 100) for i in "abcde"], 1.0).test.label
        for n in range(200)
    )
    assert set(last_items) == set("abcde") and max(last_items.values()) < 80


def test_gap_cuts_sessions_only_when_strictly_longer_than_the_gap():
    events = [Event("u", "a", 0), Event("u", "b", 1800), Event("u", "c", 3601), Event("u", "d", 3700)]
    result = sessions_lib.sessionize(events, gap_seconds=1800)
    assert result.sessions == [(("a", 0), ("b", 1800)), (("c", 3601), ("d", 3700))]
    assert sessions_lib.sessionize(events, gap_seconds=None).sessions == [
        (("a", 0), ("b", 1800), ("c", 3601), ("d", 3700))
    ]


def test_repeats_collapse_and_short_sessions_are_dropped():
    events = [Event("u", "a", 0), Event("u", "a", 5), Event("u", "b", 9), Event("u", "c", 9999)]
    result = sessions_lib.sessionize(events, gap_seconds=1800)
    assert result.sessions == [(("a", 0), ("b", 9))]
    assert (result.dropped_repeats, result.dropped_short) == (1, 1)


def test_single_event_users_produce_nothing():
    events = [Event(f"user{i}", f"i{i % 2}", i) for i in range(10)]  # ten users, one event each
    result = sessions_lib.events_to_pairs(events, SessionSettings(min_count=1))
    assert result.train == [] and result.eval == [] and result.test == []
    assert result.counts["dropped_short_sessions"] == 10


# --- 4. held-out engagements and pairs -------------------------------------------------------------


def test_window_pairs_exact_list():
    session = (("a", 1), ("b", 2), ("c", 3), ("a", 4), ("d", 5))
    assert sessions_lib.session_pairs(session, window=3) == [
        Pair("a", "b", 2),
        Pair("a", "c", 3),
        Pair("b", "c", 3),
        Pair("b", "a", 4),
        Pair("c", "a", 4),
        Pair("c", "d", 5),
        Pair("a", "d", 5),
    ]
    # At window 4 the first "a" reaches the second one: that (a, a) pair is skipped.
    train4 = sessions_lib.session_pairs(session, window=4)
    assert Pair("a", "a", 4) not in train4
    assert len(train4) == 8


def test_hold_out_last_takes_the_last_two_distinct_engagements():
    events = [
        Event("u", "a", 1),
        Event("u", "b", 2),
        Event("u", "c", 3),
        Event("u", "d", 5),
        Event("u", "d", 6),
    ]
    history = sessions_lib.hold_out_last(reversed(events), share=1.0)  # input order does not matter
    assert history.test == Pair("c", "d", 5)  # the repeated "d" counts once, from its first engagement
    assert history.eval == Pair("b", "c", 3)
    assert history.train == events[:2]  # neither target is seen by training


def test_short_or_unselected_histories_are_not_held_out():
    short = [Event("u", "a", 1), Event("u", "b", 2), Event("u", "b", 3)]
    assert sessions_lib.hold_out_last(short, share=1.0, rerank_transitions=1) == (short, None, None, ())
    four = [Event("u", x, t) for t, x in enumerate("abcd")]
    assert sessions_lib.hold_out_last(four, share=0.0, rerank_transitions=1) == (four, None, None, ())


def test_rerank_transitions_are_held_out_before_the_validation_one():
    events = [Event("u", x, t) for t, x in enumerate("abcdeefg")]  # "e" repeated: counts once, at t=4
    history = sessions_lib.hold_out_last(events, share=1.0, rerank_transitions=3, rerank_min_engagements=5)
    assert (history.eval, history.test) == (Pair("e", "f", 6), Pair("f", "g", 7))
    assert history.rerank == (Pair("d", "e", 4), Pair("c", "d", 3), Pair("b", "c", 2))  # nearest first
    assert history.train == events[:2]  # none of the held-out targets is seen by training
    one = sessions_lib.hold_out_last(events, share=1.0, rerank_transitions=1, rerank_min_engagements=5)
    assert one.rerank == (Pair("d", "e", 4),) and one.train == events[:4]


def test_short_histories_give_up_fewer_rerank_transitions_and_keep_training():
    five = [Event("u", x, t) for t, x in enumerate("abcde")]
    history = sessions_lib.hold_out_last(five, share=1.0, rerank_transitions=3, rerank_min_engagements=5)
    assert history.rerank == (Pair("b", "c", 2),) and history.train == five[:2]
    four = five[:4]
    held = sessions_lib.hold_out_last(four, share=1.0, rerank_transitions=3)  # as without the rerank split
    assert held == (four[:2], Pair("b", "c", 2), Pair("c", "d", 3), ())
    six = [Event("u", x, t) for t, x in enumerate("abcdef")]
    stricter = sessions_lib.hold_out_last(six, share=1.0, rerank_transitions=3, rerank_min_engagements=6)
    assert stricter.rerank == (Pair("c", "d", 3),) and stricter.train == six[:3]
    assert [sessions_lib.rerank_held_out(n, 3, 5) for n in range(3, 10)] == [0, 0, 1, 2, 3, 3, 3]


def test_eval_user_share_is_stable_and_close_to_the_share():
    users = [f"user{i}" for i in range(4000)]
    chosen = [u for u in users if sessions_lib.is_eval_user(u, 0.25)]
    assert 0.22 < len(chosen) / len(users) < 0.28
    assert chosen == [u for u in users if sessions_lib.is_eval_user(u, 0.25)]


def test_events_to_pairs_never_trains_on_held_out_targets():
    rng = random.Random(0)
    events = [Event(f"u{u}", f"i{rng.randrange(6)}", t * 60 + u) for u in range(4) for t in range(40)]
    result = sessions_lib.events_to_pairs(events, SessionSettings(min_count=1))
    assert len(result.eval) == len(result.test) == 4
    for held in result.test:
        assert not any(p.timestamp >= held.timestamp for p in result.train if p.label == held.label)
    last_train = max(p.timestamp for p in result.train)
    assert all(p.timestamp > last_train - 60 * 3 for p in result.eval)
    assert all(p.item != p.label for p in result.train + result.eval + result.test)
    assert result.counts["pairs_train"] == len(result.train)
    assert result.counts["pairs_eval"] == result.counts["pairs_test"] == 4
    per_user = SessionSettings().rerank_transitions  # every user here has enough distinct engagements
    assert len(result.rerank) == result.counts["pairs_rerank"] == 4 * per_user
    for held in result.rerank:
        assert not any(p.timestamp >= held.timestamp for p in result.train if p.label == held.label)
    deeper = sessions_lib.events_to_pairs(
        events, SessionSettings(min_count=1, rerank_transitions=per_user + 1)
    )
    assert len(deeper.rerank) == 4 * (per_user + 1) and set(result.rerank) <= set(deeper.rerank)
    assert len(deeper.train) < len(result.train) and (deeper.eval, deeper.test) == (result.eval, result.test)
    none = sessions_lib.events_to_pairs(events, SessionSettings(min_count=1, rerank_transitions=0))
    assert none.rerank == [] and len(none.train) > len(result.train)


def test_split_log_drops_rare_items_first_then_splits_each_user_in_id_order():
    """split_log is the one split the reference and the benches use: rare items leave before anything else,
    users come out sorted by id (so lists built from it are reproducible), and each user gets exactly what
    the executor computes for them (user_examples on their remaining events)."""
    rng = random.Random(1)
    events = [Event(f"u{u}", f"i{rng.randrange(5)}", t * 60) for u in (3, 1, 2, 10) for t in range(12)]
    events += [Event("u1", "rare", 5), Event("u3", "rare", 7)]
    rng.shuffle(events)
    settings = SessionSettings(min_count=3)
    split = sessions_lib.split_log(events, settings, settings.session_gap_seconds)
    assert list(split.users) == ["u1", "u10", "u2", "u3"]
    assert split.dropped_rare == 2
    for user, examples in split.users.items():
        mine = [e for e in events if e.user == user and e.item != "rare"]
        assert examples == sessions_lib.user_examples(mine, settings, settings.session_gap_seconds)
        assert examples.history.test is not None and "rare" not in {e.item for e in examples.history.train}
    reference = sessions_lib.events_to_pairs(events, settings)
    assert reference.counts["dropped_rare_item_events"] == 2
    assert Counter(reference.test) == Counter(ex.history.test for ex in split.users.values())
    assert reference.train == [pair for ex in split.users.values() for pair in ex.train]


def test_read_events_uses_the_pipelines_parser(tmp_path):
    path = tmp_path / "ratings.tsv"
    path.write_text("user_id\titem_id\trating\ttimestamp\n1\t50\t5\t881250949\n2\t181\t4\tnot-a-time\n")
    with pytest.raises(ValueError, match=r"ratings.tsv line 3: bad_timestamp: column 'timestamp'"):
        event_rows.read_events(str(path), EventSource(path=str(path)))
    assert event_rows.read_events(str(path), skip_bad_rows=True) == [Event("1", "50", 881250949)]
    path.write_text("user_id\titem_id\trating\ttimestamp\n1\t50\t5\t881250949\n")
    assert event_rows.read_events(str(path)) == [Event("1", "50", 881250949)]


# --- settings and config --------------------------------------------------------------------------


def test_settings_validation_names_the_field():
    with pytest.raises(ValueError, match="window=1"):
        SessionSettings(window=1)
    with pytest.raises(ValueError, match="eval_user_share"):
        SessionSettings(eval_user_share=1.5)
    with pytest.raises(ValueError, match="min_count='5' is invalid: expected an integer"):
        SessionSettings(min_count="5")
    with pytest.raises(ValueError, match="file_format='xls'"):
        EventSource(path="a", file_format="xls")
    with pytest.raises(ValueError, match="rerank_transitions=-1 is invalid"):
        SessionSettings(rerank_transitions=-1)
    with pytest.raises(ValueError, match="rerank_min_engagements=4 is invalid: expected >= 5"):
        SessionSettings(rerank_min_engagements=4)


def test_config_round_trips_through_json_and_rejects_unknown_keys():
    source = EventSource(path="p", user_col="u", weight_col="w", action_col="a", actions=("save", "click"))
    settings = SessionSettings(window=3, eval_user_share=0.2)
    text = session_settings.encode_config(source, settings)
    assert json.loads(text)["settings"]["window"] == 3
    assert session_settings.decode_config("p", text) == (source, settings)
    with pytest.raises(ValueError, match=r"input_config.settings: unknown setting SessionSettings\.windw"):
        session_settings.decode_config("p", json.dumps({"settings": {"windw": 3}}))
    older = json.loads(text) | {"split_version": session_settings.SPLIT_VERSION - 1}
    with pytest.raises(
        ValueError, match=f"split_version {session_settings.SPLIT_VERSION - 1}; this code splits with"
    ):
        session_settings.decode_config("p", json.dumps(older))


def test_check_counts_messages():
    settings = SessionSettings(max_bad_share=0.01)
    counts = {"rows_read": 100, "bad_rows": 5, "bad_row_empty_id": 5, "pairs_train": 10}
    with pytest.raises(ValueError, match=r"5 of 100 rows .*logs/x.csv.*empty_id=5.*q.jsonl"):
        run_counts.check_counts("logs/x.csv", counts, settings, "q.jsonl")
    with pytest.raises(ValueError, match=r"no training pairs from 'logs/x.csv'.*min_count=5"):
        run_counts.check_counts("logs/x.csv", {"rows_read": 100, "events_read": 100}, settings, "q.jsonl")


# --- files ----------------------------------------------------------------------------------------


def test_read_rows_streams_csv_with_line_numbers(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text('user_id,item_id,timestamp\nu1,"a,b",10\n\nu2,c\n')
    rows = list(input_files.read_rows(str(path), EventSource(path=str(path))))
    assert [(r.line, r.row) for r in rows] == [
        (2, {"user_id": "u1", "item_id": "a,b", "timestamp": "10"}),
        (4, {"user_id": "u2", "item_id": "c", "timestamp": None}),
    ]


def test_list_input_files_and_errors(tmp_path):
    (tmp_path / "part-0.tsv").write_text("user_id\titem_id\ttimestamp\n")
    (tmp_path / "part-1.tsv").write_text("user_id\titem_id\ttimestamp\nu\ti\t1\n")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".part-0.tsv.crc").write_text("")
    files = input_files.list_input_files(str(tmp_path))
    assert [os.path.basename(f) for f in files] == ["part-0.tsv", "part-1.tsv"]
    assert input_files.list_input_files(str(tmp_path / "part-*.tsv")) == files
    input_files.check_input_files(files, EventSource(path=str(tmp_path)))  # one file has a row: fine

    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        input_files.list_input_files(missing)
    with pytest.raises(ValueError, match=r"no rows in the input .*part-0"):
        input_files.check_input_files(files[:1], EventSource(path=files[0]))
    with pytest.raises(ValueError, match=r"part-1.tsv' has no column\(s\) \['user'\]"):
        input_files.check_input_files(files[1:], EventSource(path=files[1], user_col="user"))
    with pytest.raises(ValueError, match="cannot tell the format"):
        input_files.file_format(str(tmp_path / "log.json"), EventSource(path="x"))


def test_fingerprint_changes_when_a_file_changes(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\n")
    before = input_files.fingerprint_inputs(str(tmp_path))
    assert input_files.fingerprint_inputs(str(tmp_path)) == before
    path.write_text("user_id,item_id,timestamp\nu,i,1\n")
    assert input_files.fingerprint_inputs(str(tmp_path)) != before


def test_fingerprint_sees_an_edit_that_keeps_size_and_modification_time(tmp_path):
    """What `cp -p`, `rsync -a` or `tar` can leave: other rows, the same size and mtime."""
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\nu1,i1,1\n")
    stat = path.stat()
    before = input_files.fingerprint_inputs(str(path))
    path.write_text("user_id,item_id,timestamp\nu1,i2,1\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert input_files.fingerprint_inputs(str(path)) != before


# Rows the cheap path must read exactly as parse_row does (or hand over to it): every kind of value a CSV
# or Parquet column can hold, including the malformed ones.
AWKWARD_ROWS = [
    ("u1", "i1", "100"),
    (" u1 ", " i1 ", " 100 "),  # padded
    ("u1", "i1", "100.7"),  # float seconds
    ("u1", "i1", "2024-01-02T03:04:05Z"),  # ISO
    ("u1", "i1", ""),  # blank time
    ("u1", "i1", "1_000"),  # what int() accepts
    ("", "i1", "100"),  # empty id
    ("u1", "   ", "100"),
    ("u1", "i1", "soon"),
    (7, 8.0, 100),  # Parquet numbers
    (7, 8, 100.5),
    (None, "i1", "100"),
    (True, "i1", 5),
    ("u1", "i1"),  # short row
]


def test_parse_batch_agrees_with_parse_row_on_every_row():
    source = EventSource(path="log.csv")
    columns = ("user_id", "item_id", "timestamp")
    batch = input_files.RowBatch("log.csv", columns, list(range(2, 2 + len(AWKWARD_ROWS))), AWKWARD_ROWS)
    parsed = event_rows.parse_batch(batch, source)

    expected_events, expected_bad = [], []
    for i in range(len(AWKWARD_ROWS)):
        raw = batch.raw(i)
        result = event_rows.parse_row(raw.row, source)
        if isinstance(result, event_rows.Event):
            expected_events.append(tuple(result))
        else:
            expected_bad.append(event_rows.quarantine_record(raw, result))
    assert parsed.events == expected_events
    assert parsed.bad == expected_bad
    assert parsed.counts["rows_read"] == len(AWKWARD_ROWS)
    assert parsed.counts["events_read"] == len(expected_events) >= 6
    assert parsed.counts["bad_rows"] == len(expected_bad) >= 5
    assert json.loads(parsed.bad[-1])["line"] == 1 + len(AWKWARD_ROWS)  # the short row, by its line


def test_parse_batch_with_weights_and_sessions():
    weighted = EventSource(path="log.csv", weight_col="w")
    batch = input_files.RowBatch(
        "log.csv",
        ("user_id", "item_id", "timestamp", "w"),
        [2, 3],
        [("u", "i", "1", "0"), ("u", "j", "2", "1.5")],
    )
    parsed = event_rows.parse_batch(batch, weighted)
    assert parsed.events == [("u", "j", 2, 0)]
    assert parsed.counts[event_rows.DROPPED_NONPOSITIVE_WEIGHT] == 1

    sessions = EventSource(path="s.txt", sessions=True)
    batch = input_files.RowBatch(
        "s.txt", (input_files.SESSION_FIELD,), [1, 2, 3], [("a b",), ("  ",), ("c",)]
    )
    parsed = event_rows.parse_batch(batch, sessions)
    assert parsed.events == [("s.txt:1", "a", 1, 0), ("s.txt:1", "b", 1, 1), ("s.txt:3", "c", 3, 0)]
    assert parsed.counts["rows_read"] == 2


def test_row_batches_split_a_file_and_keep_line_numbers(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"u{i},i{i},{i}\n\n" for i in range(5)))
    batches = list(input_files.read_row_batches(str(path), EventSource(path=str(path)), rows_per_batch=2))
    assert [len(b.rows) for b in batches] == [2, 2, 1]  # blank lines skipped, as csv.DictReader does
    assert [line for b in batches for line in b.lines] == [2, 4, 6, 8, 10]
    assert batches[2].raw(0).row == {"user_id": "u4", "item_id": "i4", "timestamp": "4"}
