"""The batched (numpy) split of users against the per-user reference, `sessions_lib.user_examples`."""

import random
from collections import Counter

import pytest

from components.session_example_gen import sessions_batch, sessions_lib
from components.session_example_gen.event_rows import Event
from components.session_example_gen.session_settings import SessionSettings
from components.session_example_gen.sessions_lib import Pair


def _reference(batch, settings, gap, frequent):
    """What the per-user path gives the same users: pairs per split in user order, and the counters."""
    splits = {"train": [], "eval": [], "test": [], "rerank": []}
    counts = Counter()
    for user, chunks in batch:
        events = [Event(user, item, ts, seq) for chunk in chunks for item, ts, seq in chunk]
        if frequent is not None:
            kept = [e for e in events if e.item in frequent]
            counts["dropped_rare_item_events"] += len(events) - len(kept)
            events = kept
        examples = sessions_lib.user_examples(events, settings, gap)
        history = examples.history
        if history.test is not None:
            splits["eval"].append(history.eval)
            splits["test"].append(history.test)
            splits["rerank"].extend(history.rerank)
        splits["train"].extend(examples.train)
        counts["sessions"] += len(examples.sessions.sessions)
        counts["dropped_short_sessions"] += examples.sessions.dropped_short
        counts["dropped_repeated_events"] += examples.sessions.dropped_repeats
    for name, pairs in splits.items():
        counts[f"pairs_{name}"] = len(pairs)
    return splits, counts


def _as_pairs(result: sessions_batch.BatchPairs, split: str) -> list[Pair]:
    arrays = getattr(result, split)
    return [
        Pair(result.items[i], result.items[j], t)
        for i, j, t in zip(
            arrays.items.tolist(), arrays.labels.tolist(), arrays.timestamps.tolist(), strict=True
        )
    ]


def _random_batch(rng: random.Random, users: int, items: int, max_events: int, seq: bool):
    batch = []
    for u in rng.sample(range(10 * users), users):
        events, t = [], rng.randrange(10**6)
        for _ in range(rng.randrange(max_events + 1)):
            t += rng.choice([0, 0, 1, 5, 60, 2000, 4000])  # ties, short and long gaps
            events.append((f"i{rng.randrange(items)}", t, rng.randrange(3) if seq else 0))
        rng.shuffle(events)
        cut = rng.randrange(len(events) + 1)
        batch.append((f"u{u}", [events[:cut], events[cut:]]))  # a user's events arrive in chunks
    return batch


@pytest.mark.parametrize("seed", range(12))
def test_batch_examples_equals_user_examples_user_by_user(seed):
    rng = random.Random(seed)
    settings = SessionSettings(
        window=rng.choice([2, 3, 5]),
        min_count=1,
        eval_user_share=rng.choice([1.0, 0.5, 0.0]),
        rerank_transitions=rng.choice([0, 1, 2, 3]),
        rerank_min_engagements=rng.choice([5, 6]),
    )
    batch = _random_batch(
        rng, users=rng.randrange(1, 40), items=rng.choice([2, 4, 30]), max_events=30, seq=seed % 2
    )
    gap = rng.choice([None, 1800])
    frequent = frozenset(f"i{i}" for i in range(0, 30, 2)) if seed % 3 == 0 else None
    expected, expected_counts = _reference(batch, settings, gap, frequent)
    result = sessions_batch.batch_examples(batch, settings, gap, frequent)
    for split, pairs in expected.items():
        assert _as_pairs(result, split) == pairs, split
    assert +result.counts == +expected_counts


def test_batch_examples_holds_out_and_pairs_a_hand_made_user():
    """Items a b b c d e at one minute apart: d -> e is the test, c -> d the validation; a b c are trained on
    (b's repeat collapses), and a user outside nothing-held-out keeps everything."""
    events = [("a", 60, 0), ("b", 120, 0), ("b", 180, 0), ("c", 240, 0), ("d", 300, 0), ("e", 360, 0)]
    settings = SessionSettings(window=3, min_count=1, rerank_transitions=0)
    result = sessions_batch.batch_examples([("u", [events])], settings, 1800)
    assert _as_pairs(result, "test") == [Pair("d", "e", 360)]
    assert _as_pairs(result, "eval") == [Pair("c", "d", 300)]
    assert _as_pairs(result, "train") == [Pair("a", "b", 120), Pair("a", "c", 240), Pair("b", "c", 240)]
    assert result.counts["dropped_repeated_events"] == 1 and result.counts["sessions"] == 1


def test_batch_examples_of_no_events_is_empty():
    result = sessions_batch.batch_examples([("u", [[("x", 1, 0)]])], SessionSettings(), 1800, frozenset())
    assert result.counts["dropped_rare_item_events"] == 1
    assert all(len(getattr(result, split).items) == 0 for split in ("train", "eval", "test", "rerank"))
