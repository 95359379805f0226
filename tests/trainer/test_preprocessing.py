"""The preprocessing_fn's one vocabulary: its ids and counts against a brute-force count of the pairs."""

from collections import Counter

import numpy as np
import pytest

from tests.trainer.transform_output import run_transform
from trainer_module import features
from trainer_module.vocabulary_file import parse_vocabulary_counts, read_vocabulary


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(3)
    names = [f"id {k}" if k % 3 else f"item-{k}" for k in range(30)]  # some ids hold a space
    items = [names[k] for k in rng.zipf(1.6, 300) % 30]
    labels = [names[k] for k in rng.zipf(1.6, 300) % 30]
    return items, labels


@pytest.mark.parametrize("min_count", [1, 3])
def test_vocabulary_counts_are_the_brute_force_counts_of_items_and_labels(pairs, tmp_path, min_count):
    items, labels = pairs
    output, indexed = run_transform(pairs, pairs, str(tmp_path), min_count=min_count)
    ids, counts = read_vocabulary(output)
    expected = {k.encode(): n for k, n in Counter(items + labels).items() if n >= min_count}
    assert dict(zip(ids, counts, strict=True)) == expected and len(ids) == len(expected)
    assert counts == sorted(counts, reverse=True)  # most frequent first
    assert min_count == 1 or len(expected) < len(set(items + labels))  # the threshold really cut
    # The lookup Transform applies is that file's row order; ids below the threshold go to the OOV row.
    row = {item_id.decode(): n for n, item_id in enumerate(ids)}
    oov = len(ids) + features.NUM_OOV_BUCKETS - 1
    assert indexed == [(row.get(i, oov), row.get(j, oov)) for i, j in zip(items, labels, strict=True)]
    assert output.vocabulary_file_by_name(features.VOCABULARY) is None  # one vocabulary file, not two


def test_parse_reads_spaces_spelled_by_tf_transform_and_by_older_runs():
    ids, counts = parse_vocabulary_counts([b"7 id__SPACE__3\n", b"5 id 4\n", b"1 plain\n"])
    assert ids == [b"id 3", b"id 4", b"plain"] and counts == [7, 5, 1]
    with pytest.raises(ValueError, match="x:2"):
        parse_vocabulary_counts([b"7 a\n", b"plain\n"], "x")
