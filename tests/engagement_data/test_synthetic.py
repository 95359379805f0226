"""Tests for engagement_data.synthetic: the generator's guarantees and the planted-recall score."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from components.session_example_gen.event_rows import Event, parse_row
from components.session_example_gen.input_files import list_input_files, read_rows
from components.session_example_gen.session_settings import EventSource
from components.session_example_gen.sessions_lib import sessionize
from engagement_data import synthetic as syn


def _digest(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _events(log: syn.SyntheticLog, file_format: str = "auto") -> list[Event]:
    source = EventSource(path=log.events_dir, file_format=file_format)
    events = []
    for file in list_input_files(log.events_dir):
        for raw in read_rows(file, source):
            parsed = parse_row(raw.row, source)
            assert isinstance(parsed, Event), (raw, parsed)
            events.append(parsed)
    return events


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> syn.SyntheticLog:
    settings = syn.SyntheticSettings(items=500, events=30_001, seed=7, shards=3, chunk_events=7_000)
    return syn.generate(settings, str(tmp_path_factory.mktemp("synthetic")))


def test_exact_event_count_sharded_and_readable_by_session_example_gen(small_log):
    assert len(small_log.shards) == 3
    events = _events(small_log)
    assert len(events) == small_log.events == 30_001
    assert {e.item for e in events} <= {str(i) for i in range(500)}


def test_same_seed_same_bytes_other_seed_other_bytes(small_log, tmp_path):
    settings = syn.SyntheticSettings(items=500, events=30_001, seed=7, shards=3, chunk_events=7_000)
    again = syn.generate(settings, str(tmp_path / "again"))
    assert _digest(again.shards) == _digest(small_log.shards)
    other_settings = syn.SyntheticSettings(items=500, events=30_001, seed=8, shards=3)
    other = syn.generate(other_settings, str(tmp_path / "other"))
    assert _digest(other.shards) != _digest(small_log.shards)


def test_users_sessions_are_recovered_with_the_default_gap(small_log):
    by_user: dict[str, list[Event]] = {}
    for event in _events(small_log):
        by_user.setdefault(event.user, []).append(event)
    # Every user lives in one shard (sharding by user keeps a user's history together).
    shards_per_user = Counter()
    for path in small_log.shards:
        users = {raw.row["user_id"] for raw in read_rows(path, EventSource(path=path))}
        shards_per_user.update(users)
    assert max(shards_per_user.values()) == 1
    sessions = sum(len(sessionize(evs, 1800).sessions) for evs in by_user.values())
    # Sessions shorter than 2 distinct items (after collapsing repeats) are dropped; the rest are recovered.
    assert 0.9 * small_log.sessions <= sessions <= small_log.sessions


def test_sessions_stay_in_their_topic_and_popularity_is_skewed(small_log):
    truth = syn.read_ground_truth(small_log.ground_truth)
    by_user: dict[str, list[Event]] = {}
    for event in _events(small_log):
        by_user.setdefault(event.user, []).append(event)
    same = total = 0
    for evs in by_user.values():
        for session in sessionize(evs, 1800).sessions:
            for (a, _), (b, _) in itertools.pairwise(session):
                same += b in truth[a]
                total += 1
    # drift 0.1 and noise 0.05: most consecutive pairs are planted neighbours; random pairs would be ~2%.
    assert same / total > 0.7
    counts = np.array(sorted(Counter(e.item for e in _events(small_log)).values(), reverse=True))
    assert counts[:50].sum() > 0.25 * counts.sum()  # Zipf: the top 10% of items carry a large share


def test_ground_truth_is_a_symmetric_partition_into_topics(small_log):
    truth = syn.read_ground_truth(small_log.ground_truth)
    assert len(truth) == 500
    assert all(len(related) == 9 for related in truth.values())
    for item, related in truth.items():
        assert item not in related
        assert all(item in truth[other] for other in related)


def test_parquet_output_reads_the_same_way(tmp_path):
    settings = syn.SyntheticSettings(items=100, events=2_000, seed=1, shards=2, file_format="parquet")
    log = syn.generate(settings, str(tmp_path))
    assert all(p.endswith(".parquet") for p in log.shards)
    assert len(_events(log)) == 2_000


def test_refuses_to_mix_with_existing_shards(small_log):
    settings = syn.SyntheticSettings(items=500, events=100, seed=7, shards=3)
    with pytest.raises(FileExistsError, match="already holds"):
        syn.generate(settings, str(Path(small_log.events_dir).parent))


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(items=0), "items"),
        (dict(events=-5), "events"),
        (dict(topic_size=1), "topic_size"),
        (dict(items=15, topic_size=10), "items >= 2"),
        (dict(drift=1.5), "drift"),
        (dict(file_format="json"), "file_format"),
    ],
)
def test_settings_reject_bad_values(bad, message):
    values = dict(items=100, events=1000) | bad
    with pytest.raises(ValueError, match=message):
        syn.SyntheticSettings(**values)


def test_session_lengths_hit_the_budget_exactly():
    settings = syn.SyntheticSettings(items=100, events=1000)
    rng = np.random.default_rng(0)
    for budget in (2, 3, 17, 1000, 12_345):
        lengths = syn.session_lengths(settings, budget, rng)
        assert lengths.sum() == budget
        assert lengths.min() >= 2 and lengths.max() <= syn.MAX_SESSION_LENGTH


def test_read_ground_truth_names_file_and_line(tmp_path):
    path = tmp_path / "gt.tsv"
    path.write_text("item_id\trelated_item_ids\n1\t2 3\nbroken line\n")
    with pytest.raises(ValueError, match=r"gt.tsv line 3"):
        syn.read_ground_truth(str(path))


# ------------------------------------------------------------------------------------------ planted_recall

TRUTH = {"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"], "d": []}


def test_planted_recall_perfect_partial_and_zero():
    assert syn.planted_recall({"a": ["b", "c"], "b": ["c", "a"]}, TRUTH, k=2) == 1.0
    assert syn.planted_recall({"a": ["b", "x"]}, TRUTH, k=2) == 0.5
    assert syn.planted_recall({"a": ["x", "y", "b", "c"]}, TRUTH, k=2) == 0.0


def test_planted_recall_skips_the_query_and_normalises_by_min_k():
    # The item itself is not a neighbour; k=1 needs only one related item in first place.
    assert syn.planted_recall({"a": ["a", "c", "x"]}, TRUTH, k=1) == 1.0
    assert syn.planted_recall({"a": ["a", "x", "c"]}, TRUTH, k=1) == 0.0


def test_planted_recall_vocabulary_and_items_without_truth():
    # "c" is outside the vocabulary: only "b" is retrievable for "a"; "d" and unknown "z" do not count.
    neighbours = {"a": ["b", "x"], "d": ["a"], "z": ["a"]}
    assert syn.planted_recall(neighbours, TRUTH, k=2, vocabulary={"a", "b", "x", "d"}) == 1.0
    assert syn.planted_recall({"d": ["a"]}, TRUTH, k=3) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        syn.planted_recall(neighbours, TRUTH, k=0)


def test_cli_data_synthetic_writes_log_truth_and_manifest(tmp_path, capsys):
    from pipeline.cli import main

    out = tmp_path / "syn"
    argv = ["data", "synthetic", "--items", "200", "--events", "5000", "--shards", "2", "--out", str(out)]
    assert main(argv) == 0
    assert "5,000 events" in capsys.readouterr().out
    assert len(list((out / "events").glob("events-*-of-00002.csv"))) == 2
    assert len(syn.read_ground_truth(str(out / syn.GROUND_TRUTH_FILE))) == 200
    assert main([*argv[:3], "0", *argv[4:]]) == 1  # --items 0: a clear error, exit 1
    assert "items must be an integer >= 1" in capsys.readouterr().err
