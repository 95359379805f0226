"""bench/pipeline_split: the benches read and hold out a log exactly as the pipeline's reference does."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import pipeline_split
from components.session_example_gen import sessions_lib
from components.session_example_gen.sessions_lib import Event, EventSource, SessionSettings
from tests.bench.test_reference_gensim import tiny_log


def test_read_events_uses_the_pipelines_parser(tmp_path):
    path = tmp_path / "ratings.tsv"
    path.write_text("user_id\titem_id\trating\ttimestamp\n1\t50\t5\t881250949\n2\t181\t4\tnot-a-time\n")
    with pytest.raises(ValueError, match=r"ratings.tsv line 3: bad_timestamp: column 'timestamp'"):
        pipeline_split.read_events(str(path), EventSource(path=str(path)))
    assert pipeline_split.read_events(str(path), skip_bad_rows=True) == [Event("1", "50", 881250949)]
    path.write_text("user_id\titem_id\trating\ttimestamp\n1\t50\t5\t881250949\n")
    assert pipeline_split.read_events(str(path)) == [Event("1", "50", 881250949)]


def test_held_out_histories_hold_out_what_the_pipeline_reference_holds_out():
    events = tiny_log()
    settings = SessionSettings(rerank_transitions=2)
    reference = sessions_lib.events_to_pairs(events, settings)
    histories = list(pipeline_split.held_out_histories(events, settings))
    users = [user for user, _ in histories]
    assert users == sorted(set(users))
    held = [h for _, h in histories if h.test is not None]
    assert held, "the tiny log must hold some users out"
    assert Counter(h.eval for h in held) == Counter(reference.eval)
    assert Counter(h.test for h in held) == Counter(reference.test)
    assert Counter(p for h in held for p in h.rerank) == Counter(reference.rerank)
    assert reference.rerank, "the tiny log must give reranker transitions"
