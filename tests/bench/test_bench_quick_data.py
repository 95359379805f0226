"""bench/bench_quick_data: bench-quick's sessions are SessionExampleGen's, same-second order included."""

from __future__ import annotations

from bench.bench_quick_data import load_sessions
from components.session_example_gen.event_rows import Event
from components.session_example_gen.sessions_lib import sessionize


def test_same_second_events_follow_the_pipelines_order_not_item_ids(tmp_path):
    rows = [(f"u{u}", str(item), 1_000) for u in range(6) for item in (11, 12, 13, 14, 15)]
    rows += [("u0", "16", 5_000), ("u0", "17", 5_010)]  # a second session after the 1800 s gap
    (tmp_path / "events-00000.csv").write_text(
        "user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)
    )
    sentences = load_sessions(str(tmp_path)).as_sentences()

    expected = []
    for user in sorted({u for u, _, _ in rows}):
        events = [Event(u, i, t) for u, i, t in rows if u == user]
        expected += [[item for item, _ in s] for s in sessionize(events, 1800).sessions]
    assert sorted(sentences) == sorted(expected)
    assert ["16", "17"] in sentences
    bursts = [s for s in sentences if len(s) == 5]
    assert len(bursts) == 6
    assert any(s != sorted(s) for s in bursts), "same-second events must not come out in item-id order"
