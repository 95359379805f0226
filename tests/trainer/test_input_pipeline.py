import numpy as np
import pytest
import tensorflow as tf

from trainer_module import features
from trainer_module.input_pipeline import PAIR_FEATURE_SPEC, pair_batches, write_pairs


def _pairs(tmp_path, n=1000, shards=2):
    items, labels = np.arange(n) % 7, (np.arange(n) * 3) % 11  # index 10 stands for the OOV bucket below
    files = [
        write_pairs(str(tmp_path / f"p{i}.gz"), items[i::shards].tolist(), labels[i::shards].tolist())
        for i in range(shards)
    ]
    return files, items, labels


def _collect(dataset):
    batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    return batches, sorted(zip(*(np.concatenate(c) for c in zip(*batches, strict=True)), strict=True))


def test_every_known_pair_once_per_pass_and_oov_pairs_dropped(tmp_path):
    files, items, labels = _pairs(tmp_path)
    batches, pairs = _collect(pair_batches(files, PAIR_FEATURE_SPEC, 64, vocabulary_size=10))
    expected = sorted((i, j) for i, j in zip(items, labels, strict=True) if j < 10)
    assert pairs == expected
    assert max(len(x) for x, _ in batches) <= 64


def test_shuffled_and_cached_passes_see_the_same_pairs_in_another_order(tmp_path):
    _pairs(tmp_path)
    dataset = pair_batches(
        str(tmp_path / "p*.gz"),
        PAIR_FEATURE_SPEC,
        32,
        10,
        shuffle_buffer=16,
        seed=3,
        cache_path=str(tmp_path / "c"),
    )
    first_batches, first = _collect(dataset)
    second_batches, second = _collect(dataset)  # read back from the cache file
    assert first == second
    assert [b[0].tolist() for b in first_batches] != [b[0].tolist() for b in second_batches]
    assert list(tmp_path.glob("c*"))  # the cache really is on disk


def test_reads_sparse_feature_specs_and_names_missing_files(tmp_path):
    files, _, _ = _pairs(tmp_path, n=50, shards=1)
    spec = {name: tf.io.VarLenFeature(tf.int64) for name in (features.ITEM_INDEX, features.LABEL_INDEX)}
    _, pairs = _collect(pair_batches(files, spec, 16, 100))
    assert len(pairs) == 50
    with pytest.raises(FileNotFoundError, match="no transformed example files"):
        pair_batches(str(tmp_path / "missing-*"), spec, 16, 100)
