"""Hand-encoded tf.Example pairs and TFRecord framing, read back by TensorFlow itself."""

import gzip
import itertools

import numpy as np
import pytest
import tensorflow as tf

from components.session_example_gen import tfrecord_files
from components.session_example_gen.pair_example import PairEncoder, encode_pair, encode_pairs
from trainer_module import features

CASES = [
    ("a", "b", 0),
    ("item 42", "x" * 300, 1_700_000_000),  # a label longer than one length byte
    ("ü-ñ", "雪", -5),  # non-ASCII ids, a negative timestamp (ten-byte varint)
    ("", "z", 2**62),
]


def _reference(item, label, timestamp):
    feature = {
        features.ITEM: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
        features.LABEL: tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
        features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[timestamp])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


@pytest.mark.parametrize("pair", CASES)
def test_encoded_pair_parses_to_the_same_example(pair):
    assert tf.train.Example.FromString(encode_pair(*pair)) == _reference(*pair)


def test_cached_encoder_matches_uncached_even_after_its_cache_is_cleared():
    encoder = PairEncoder(max_cached=2)
    for pair in CASES * 3:
        assert encoder.encode(*pair) == encode_pair(*pair)


def test_parse_example_reads_encoded_pairs():
    spec = {
        features.ITEM: tf.io.FixedLenFeature([], tf.string),
        features.LABEL: tf.io.FixedLenFeature([], tf.string),
        features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    }
    parsed = tf.io.parse_example([encode_pair(*p) for p in CASES], spec)
    assert [v.decode() for v in parsed[features.ITEM].numpy()] == [p[0] for p in CASES]
    assert list(parsed[features.TIMESTAMP].numpy()) == [p[2] for p in CASES]


def test_framed_records_read_back_with_tfrecord_dataset(tmp_path):
    records = [b"", b"one", bytes(range(256)) * 40]
    path = tmp_path / "data.gz"
    with gzip.open(path, "wb") as f:
        f.write(tfrecord_files.frame(records[:2]))
        f.write(tfrecord_files.frame(records[2:]))
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
    assert read == records


def test_corrupted_frame_is_refused_by_tensorflow(tmp_path):
    framed = bytearray(tfrecord_files.frame([b"payload"]))
    framed[-1] ^= 0xFF  # the data's CRC
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(bytes(framed))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_encode_pairs_and_frame_records_give_the_per_pair_bytes():
    """The batch encoder and framer against the per-pair ones, on random codes with repeats, long and
    non-ASCII ids and negative and large timestamps."""
    rng = np.random.default_rng(0)
    names = ["a", "ü-ñ", "x" * 300, "", "item 42", "雪"]
    n = 500
    items, labels = rng.integers(0, len(names), n), rng.integers(0, len(names), n)
    edge_times = [0, -5, -1, 1_700_000_000, 2**62, 2**63 - 1, -(2**63), 127, 128, 16384]
    timestamps = rng.choice(np.array(edge_times), n)
    records, offsets = encode_pairs(names, items, labels, timestamps)
    encoder = PairEncoder()
    expected = [
        encoder.encode(names[i], names[j], int(t)) for i, j, t in zip(items, labels, timestamps, strict=True)
    ]
    assert [records[a:b].tobytes() for a, b in itertools.pairwise(offsets)] == expected
    assert tfrecord_files.frame_records(records, offsets) == tfrecord_files.frame(expected)


def test_encode_pairs_of_nothing_frames_to_nothing():
    empty = np.zeros(0, np.int64)
    records, offsets = encode_pairs(["a"], empty, empty, empty)
    assert len(records) == 0 and list(offsets) == [0]
    assert tfrecord_files.frame_records(records, offsets) == b""
