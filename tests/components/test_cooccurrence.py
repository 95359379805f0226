"""Co-occurrence candidates: the pure algorithm by hand, the Beam executor on a tiny log with known counts."""

import json
import os

import numpy as np
import pytest
from tfx.types import artifact_utils, channel_utils, standard_artifacts

from components.cooccurrence import cooccurrence_lib as lib
from components.cooccurrence.component import CooccurrenceCandidates, RelatedCandidates
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.cooccurrence.executor import SCRATCH_DIR, Executor
from formats import candidate_table
from tests.components.example_splits import write_split

# (item, label) training pairs: a-b three times, a-c twice (once each way), b-c once, c-d once.
PAIRS = [("a", "b"), ("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "d"), ("d", "d")]


def test_counts_are_symmetric_and_scores_by_hand():
    lists, degrees = lib.cooccurrence_lists(PAIRS, CooccurrenceSettings(popularity_exponent=0.0))
    assert lists["a"] == [("b", 3.0), ("c", 2.0)]
    assert lists["c"] == [("a", 2.0), ("b", 1.0), ("d", 1.0)]
    assert lists["d"] == [("c", 1.0)]  # (d, d) is no co-occurrence
    assert dict(degrees) == {"a": 5, "b": 4, "c": 4, "d": 1}


def test_popularity_exponent_damps_popular_candidates():
    lists, _ = lib.cooccurrence_lists(PAIRS, CooccurrenceSettings(popularity_exponent=1.0))
    # c's candidates: a 2/5, b 1/4, d 1/1 -> d first.
    assert [c for c, _ in lists["c"]] == ["d", "a", "b"]
    assert lists["c"][0][1] == pytest.approx(1.0)


def test_min_count_and_top_n():
    lists, _ = lib.cooccurrence_lists(
        PAIRS, CooccurrenceSettings(min_count=2, top_n=1, popularity_exponent=0.0)
    )
    assert lists["a"] == [("b", 3.0)]
    assert lists["d"] == []


def test_settings_are_checked():
    with pytest.raises(ValueError, match="popularity_exponent"):
        CooccurrenceSettings(popularity_exponent=2.0)
    with pytest.raises(ValueError, match="top_n"):
        CooccurrenceSettings(top_n=0)


def _examples(tmp_path, pairs):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split, split_pairs in (("train", pairs), ("eval", [("a", "d")] * 50)):
        write_split(examples, split, split_pairs)
    return examples


def test_executor_matches_the_reference_and_reads_only_the_train_split(tmp_path):
    candidates = RelatedCandidates()
    candidates.uri = str(tmp_path / "candidates")
    settings = {"top_n": 2, "popularity_exponent": 0.0, "min_count": 1}
    Executor().Do(
        {"examples": [_examples(tmp_path, PAIRS)]},
        {"candidates": [candidates]},
        {"cooccurrence_config": json.dumps(settings)},
    )
    table = candidate_table.load_table(candidates.uri)
    expected, degrees = lib.cooccurrence_lists(PAIRS, CooccurrenceSettings(**settings))
    for item in "abcd":
        assert table.candidates(item, 2) == expected[item]
    assert dict(zip(table.items, table.popularity.tolist(), strict=True)) == dict(degrees)
    assert table.candidates("a", 10) == [("b", 3.0), ("c", 2.0)]  # the eval split's (a, d) never counted
    assert candidates.get_int_custom_property("num_items") == 4
    assert table.meta["source"] == "cooccurrence"
    # The workers' shards went to a scratch directory inside the artifact (shared storage on a cluster, unlike
    # the launcher's /tmp), which is gone: the artifact holds the table alone.
    assert not os.path.exists(os.path.join(candidates.uri, SCRATCH_DIR))


def test_component_carries_settings_as_json():
    channel = channel_utils.as_channel([standard_artifacts.Examples()])
    component = CooccurrenceCandidates(channel, CooccurrenceSettings(top_n=7))
    assert json.loads(component.exec_properties["cooccurrence_config"])["top_n"] == 7
    assert component.outputs["candidates"].type_name == "pin2vec.RelatedCandidates"


@pytest.mark.parametrize("exponent", [0.0, 0.25, 1.0])
def test_array_version_matches_the_reference_over_chunks(exponent):
    rng = np.random.default_rng(7)
    vocabulary = np.array(sorted(f"i{n:02d}" for n in range(40)))
    rows = rng.zipf(1.5, size=(3000, 2)) % len(vocabulary)  # popular items, repeats and self-pairs
    settings = CooccurrenceSettings(top_n=5, popularity_exponent=exponent, min_count=2)

    chunks = np.array_split(rows, 3)
    keys, counts = lib.merge_pair_counts(
        lib.directed_pair_counts(c[:, 0], c[:, 1], len(vocabulary)) for c in chunks
    )
    degrees = sum(lib.pair_degrees(c[:, 0], c[:, 1], len(vocabulary)) for c in chunks)
    top = lib.top_candidate_rows(keys, counts, degrees, len(vocabulary), settings)

    expected, expected_degrees = lib.cooccurrence_lists(
        ((vocabulary[a], vocabulary[b]) for a, b in rows), settings
    )
    assert {vocabulary[i]: int(d) for i, d in enumerate(degrees) if d} == dict(expected_degrees)
    got: dict[str, list] = {}
    for row, rank, candidate, score in zip(*top, strict=True):
        got.setdefault(vocabulary[row], []).append((rank, vocabulary[candidate], score))
    assert set(got) == {item for item, ranked in expected.items() if ranked}
    for item, ranked in got.items():
        assert [r for r, _, _ in ranked] == list(range(len(ranked)))
        assert [c for _, c, _ in ranked] == [c for c, _ in expected[item]]
        assert [s for _, _, s in ranked] == pytest.approx([s for _, s in expected[item]])


def test_add_counts_keeps_the_sum_of_every_chunk_in_few_parts():
    """Chunks added one by one (and two accumulators merged, as Beam's lifted combine does) sum to what one
    merge of every chunk gives, and the parts never outnumber log2(chunks) + 2."""
    rng = np.random.default_rng(3)
    chunks = [
        lib.directed_pair_counts(*rng.integers(0, 30, size=(2, rng.integers(1, 200))), 30) for _ in range(60)
    ]
    left: list = []
    right: list = []
    for n, chunk in enumerate(chunks):
        if n % 3:
            left = lib.add_counts(left, chunk)
        else:
            right = lib.add_counts(right, chunk)
        assert len(left) <= np.log2(n + 1) + 2
    merged = left
    for part in right:
        merged = lib.add_counts(merged, part)
    keys, counts = lib.merge_pair_counts(merged)
    expected_keys, expected_counts = lib.merge_pair_counts(chunks)
    assert np.array_equal(keys, expected_keys) and np.array_equal(counts, expected_counts)
    assert counts.sum() == sum(c.sum() for _, c in chunks)


def test_unique_union_is_the_sorted_union_of_the_arrays():
    rng = np.random.default_rng(4)
    arrays = [np.array([f"i{n}".encode() for n in rng.integers(0, 500, 40)], np.bytes_) for _ in range(50)]
    parts: list = []
    for array in arrays:
        parts = lib.unique_union(parts, array)
    assert len(parts) < 10
    union = np.unique(np.concatenate(parts))
    assert union.tolist() == sorted({item for array in arrays for item in array.tolist()})
