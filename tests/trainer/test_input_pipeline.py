"""The Trainer's input pipeline: raw pair records -> the indices Transform defines, batched and cached."""

import numpy as np
import pytest
import tensorflow as tf

from trainer_module import features
from trainer_module.input_pipeline import (
    pair_batches,
    transform_indexer,
    vocabulary_indexer,
    write_pairs,
    write_vocabulary,
)
from trainer_module.vocabulary_file import read_vocabulary

VOCABULARY = [f"item-{i}" for i in range(10)]  # rows 0..9; "item-10" and up are unknown (OOV, row 10)


def _pairs(tmp_path, n=1000, shards=2):
    items, labels = np.arange(n) % 7, (np.arange(n) * 3) % 11
    files = [
        write_pairs(
            str(tmp_path / f"p{i}.gz"),
            [f"item-{k}" for k in items[i::shards]],
            [f"item-{k}" for k in labels[i::shards]],
        )
        for i in range(shards)
    ]
    return files, items, labels


def _indexer(tmp_path):
    return vocabulary_indexer(write_vocabulary(str(tmp_path / "vocabulary.txt"), VOCABULARY), len(VOCABULARY))


def _collect(dataset):
    batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    return batches, sorted(zip(*(np.concatenate(c) for c in zip(*batches, strict=True)), strict=True))


def test_every_known_pair_once_per_pass_and_oov_pairs_dropped(tmp_path):
    files, items, labels = _pairs(tmp_path)
    batches, pairs = _collect(pair_batches(files, _indexer(tmp_path), 64, vocabulary_size=10))
    expected = sorted((i, j) for i, j in zip(items, labels, strict=True) if j < 10)
    assert pairs == expected
    assert max(len(x) for x, _ in batches) <= 64


def test_cached_passes_equal_the_uncached_pass_in_another_order(tmp_path):
    _pairs(tmp_path)
    indexer = _indexer(tmp_path)
    _, uncached = _collect(pair_batches(str(tmp_path / "p*.gz"), indexer, 32, 10))
    dataset = pair_batches(
        str(tmp_path / "p*.gz"), indexer, 32, 10, shuffle_buffer=16, seed=3, cache_path=str(tmp_path / "c")
    )
    first_batches, first = _collect(dataset)
    second_batches, second = _collect(dataset)  # read back from the cache file
    assert first == second == uncached
    assert [b[0].tolist() for b in first_batches] != [b[0].tolist() for b in second_batches]
    assert list(tmp_path.glob("c*"))  # the cache really is on disk


def test_symmetric_adds_each_known_pair_reversed_also_through_the_cache(tmp_path):
    files, items, labels = _pairs(tmp_path, n=300)
    known = [(i, j) for i, j in zip(items, labels, strict=True) if j < 10]
    expected = sorted(known + [(j, i) for i, j in known])
    indexer = _indexer(tmp_path)
    _, pairs = _collect(pair_batches(files, indexer, 50, 10, symmetric=True))
    assert pairs == expected
    dataset = pair_batches(files, indexer, 50, 10, cache_path="", symmetric=True)
    assert _collect(dataset)[1] == _collect(dataset)[1] == expected


def test_names_missing_files_and_missing_features(tmp_path):
    with pytest.raises(FileNotFoundError, match="no pair example files"):
        pair_batches(str(tmp_path / "missing-*"), _indexer(tmp_path), 16, 10)
    path = str(tmp_path / "indices.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:  # transformed records, not raw pairs
        index = tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))
        record = tf.train.Example(features=tf.train.Features(feature={features.ITEM_INDEX: index}))
        writer.write(record.SerializeToString())
    with pytest.raises(tf.errors.InvalidArgumentError, match=features.ITEM):
        _collect(pair_batches(path, _indexer(tmp_path), 16, 10))


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """A real Transform analysis (min_count 2) of training pairs, and pairs with unseen and rare ids."""
    from tests.trainer.transform_output import run_transform

    rng = np.random.default_rng(5)
    train = ([f"id {k}" for k in rng.zipf(1.5, 600) % 40], [f"id {k}" for k in rng.zipf(1.5, 600) % 40])
    # Unseen in training ("new ...") and rare (a count of 1 is below min_count): both OOV.
    other = (
        [f"id {k}" for k in rng.zipf(1.5, 400) % 40] + ["new item", "id 3"],
        [f"id {k}" for k in rng.zipf(1.5, 400) % 40] + ["id 1", "new label"],
    )
    items, labels = train[0] + other[0], train[1] + other[1]
    root = tmp_path_factory.mktemp("transform")
    output, expected = run_transform(train, (items, labels), str(root), min_count=2)
    files = [write_pairs(str(root / f"pairs-{s}.gz"), items[s::2], labels[s::2]) for s in range(2)]
    return output, files, expected


def test_raw_pairs_map_to_the_indices_transform_materialized(transformed, tmp_path):
    output, files, expected = transformed
    size = len(read_vocabulary(output)[0])
    assert any(size in pair for pair in expected)  # the data really has OOV pairs...
    known = sorted(p for p in expected if max(p) < size)
    assert known and min(min(p) for p in known) == 0  # ...and known ones
    vocabulary_file = write_vocabulary(str(tmp_path / "vocabulary.txt"), read_vocabulary(output)[0])
    for n, indexer in enumerate((transform_indexer(output), vocabulary_indexer(vocabulary_file, size))):
        assert _collect(pair_batches(files, indexer, 64, size))[1] == known
        cache = str(tmp_path / f"cache-{n}")
        cached = pair_batches(files, indexer, 64, size, shuffle_buffer=4, seed=1, cache_path=cache)
        assert _collect(cached)[1] == _collect(cached)[1] == known


def test_vocabulary_lookup_equals_the_transform_graph_on_every_id(transformed, tmp_path):
    output, _, _ = transformed
    vocabulary, _ = read_vocabulary(output)
    ids = [v.decode() for v in vocabulary] + ["new item", "", "id 39 ", "ID 1", "id 1\t", "ünï"]
    raw = {name: tf.constant([[i] for i in ids]) for name in (features.ITEM, features.LABEL)}
    from_graph = transform_indexer(output)(raw)
    vocabulary_file = write_vocabulary(str(tmp_path / "vocabulary.txt"), vocabulary)
    from_table = vocabulary_indexer(vocabulary_file, len(vocabulary))(raw)
    assert from_graph[0].numpy().tolist() == list(range(len(vocabulary))) + [len(vocabulary)] * 6
    for graph, table in zip(from_graph, from_table, strict=True):
        assert graph.numpy().tolist() == table.numpy().tolist()
