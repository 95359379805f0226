"""Training pairs as serialized tf.Example bytes, encoded by hand.

Why not `tf.train.Example(...).SerializeToString()`: building the proto object costs ~90 us per pair in
Python, and a 20M-event log yields ~80M pairs. The wire format of this one fixed shape (two bytes features,
one int64 feature) is a handful of length-prefixed fields, and a user's items recur across many pairs, so
each feature's encoded bytes are cached. `encode_pairs` goes further for a batch: each distinct item, label,
timestamp and length is encoded once in Python, and the records are assembled by one numpy gather. The tests
check the bytes parse back through TensorFlow's own
`tf.train.Example` to the same values.
"""

from __future__ import annotations

import functools

import numpy as np

from trainer_module import features

_SMALL = [bytes((n,)) for n in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64  # int64 on the wire: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _entry(name: str, feature: bytes) -> bytes:
    """One `Features.feature` map entry (key = 1, value = 2), as a field of Features (1)."""
    return _field(1, _field(1, name.encode("utf-8")) + _field(2, feature))


def _bytes_entry(name: str, value: str) -> bytes:
    return _entry(name, _field(1, _field(1, value.encode("utf-8"))))  # Feature.bytes_list -> BytesList.value


def _int64_entry(name: str, value: int) -> bytes:
    return _entry(name, _field(3, _field(1, _varint(value))))  # Feature.int64_list -> packed Int64List.value


class PairEncoder:
    """Encodes (item, label, timestamp) pairs; the encoded features of recent values are cached."""

    def __init__(self, max_cached: int = 1 << 20):
        self._max_cached = max_cached
        self._items: dict[str, bytes] = {}
        self._labels: dict[str, bytes] = {}
        self._times: dict[int, bytes] = {}

    def _cached(self, cache: dict, key, encode) -> bytes:
        value = cache.get(key)
        if value is None:
            if len(cache) >= self._max_cached:
                cache.clear()
            value = cache[key] = encode(key)
        return value

    def encode(self, item: str, label: str, timestamp: int) -> bytes:
        """tf.Example {item: [item], label: [label], timestamp: [timestamp]} as bytes."""
        entries = (
            self._cached(self._items, item, lambda v: _bytes_entry(features.ITEM, v))
            + self._cached(self._labels, label, lambda v: _bytes_entry(features.LABEL, v))
            + self._cached(self._times, timestamp, lambda v: _int64_entry(features.TIMESTAMP, v))
        )
        return _field(1, entries)  # Example.features = 1


def encode_pair(item: str, label: str, timestamp: int) -> bytes:
    """One pair, uncached (see PairEncoder for many)."""
    return PairEncoder(max_cached=1).encode(item, label, timestamp)


def gather(pool: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The byte ranges pool[starts[i] : starts[i] + lengths[i]], concatenated, in one fancy index."""
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    return pool[np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + shift]


@functools.lru_cache(maxsize=4096)
def _bytes_prefix(name: str, size: int) -> bytes:
    """`_bytes_entry(name, value)` without the value's bytes: it depends only on the value's length."""
    return _entry(name, _field(1, _field(1, bytes(size))))[: -size or None]


@functools.lru_cache(maxsize=64)
def _int64_prefix(name: str, size: int) -> bytes:
    """`_int64_entry(name, value)` without the value's varint, which is `size` bytes long."""
    return _entry(name, _field(3, _field(1, bytes(size))))[:-size]


@functools.lru_cache(maxsize=4096)
def _example_header(size: int) -> bytes:
    return _varint(1 << 3 | 2) + _varint(size)  # Example.features = 1


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 values -> their protobuf varints as rows of a (n, 10) uint8 array, and each one's length."""
    bits = values.astype(np.int64).view(np.uint64)  # negatives as two's complement: ten bytes
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = (bits[:, None] >> shifts) & np.uint64(0x7F)
    lengths = 1 + ((bits[:, None] >> shifts[1:]) != 0).sum(axis=1)
    more = np.arange(10) < (lengths - 1)[:, None]  # every byte but the last has the continuation bit
    return (groups | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8), lengths


def encode_pairs(
    names: list[str], items: np.ndarray, labels: np.ndarray, timestamps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (codes into `names`, timestamps) -> (their tf.Examples concatenated as uint8, record offsets of
    length n + 1): record i is the bytes `PairEncoder().encode` gives pair i, between offsets i and i + 1.

    Each distinct id is encoded once; an entry's framing depends only on its value's length, so it comes from
    a small cache; timestamps' varints are computed as arrays."""
    n = len(items)
    distinct_items, item_piece = np.unique(items, return_inverse=True)
    distinct_labels, label_piece = np.unique(labels, return_inverse=True)
    pieces = []
    for name, distinct in ((features.ITEM, distinct_items), (features.LABEL, distinct_labels)):
        for code in distinct.tolist():
            value = names[code].encode("utf-8")
            pieces.append(_bytes_prefix(name, len(value)) + value)
    label_piece += len(distinct_items)
    varints, varint_lengths = _varints(timestamps)
    prefix_piece = len(pieces) + varint_lengths  # one piece per varint length (1..10), index = length
    pieces += [_int64_prefix(features.TIMESTAMP, size) for size in range(11)]
    lengths = np.array([len(piece) for piece in pieces], np.int64)
    payload = lengths[item_piece] + lengths[label_piece] + lengths[prefix_piece] + varint_lengths
    distinct_payloads, header_piece = np.unique(payload, return_inverse=True)
    header_piece += len(pieces)
    pieces += [_example_header(size) for size in distinct_payloads.tolist()]
    lengths = np.array([len(piece) for piece in pieces], np.int64)
    starts = np.cumsum(lengths) - lengths
    pool = np.concatenate([np.frombuffer(b"".join(pieces), np.uint8), varints.ravel()])
    varint_starts = len(pool) - varints.size + 10 * np.arange(n)
    segment_starts = np.stack(
        [starts[header_piece], starts[item_piece], starts[label_piece], starts[prefix_piece], varint_starts],
        axis=1,
    ).ravel()
    segment_lengths = np.stack(
        [
            lengths[header_piece],
            lengths[item_piece],
            lengths[label_piece],
            lengths[prefix_piece],
            varint_lengths,
        ],
        axis=1,
    ).ravel()
    records = gather(pool, segment_starts, segment_lengths)
    offsets = np.r_[0, np.cumsum(lengths[header_piece] + payload)].astype(np.int64)
    return records, offsets
