"""Raw pair records -> (item indices, label indices) batches that keep both cores busy.

The records are SessionExampleGen's raw pairs (item and label id strings); the vocabulary lookup Transform
defined runs here, once per parsed batch, instead of Transform writing every pair again as two integers
(which, record by record through Beam, cost more than training at scale).

Why it is built this way:
- records are read in blocks of `batch_size` consecutive records of one file (two files read in parallel,
  interleaved block by block) and parsed a whole block at a time: one `parse_example` call and one
  vocabulary lookup per batch;
- consecutive records usually share their item (SessionExampleGen writes a window's pairs together), and the
  model computes a distinct item's logits once per batch (`sampled_softmax.sampled_softmax_loss`), so batches
  keep those runs together: shuffling moves whole blocks (a buffer of `shuffle_buffer` batches), not records;
- parsing and lookup run in parallel and ahead of training (`prefetch`), so the training step never waits;
- the cache holds the index batches, so later epochs pay the parse and the lookup once.
Pairs touching the OOV bucket are dropped: the OOV row is not an item to learn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import tensorflow as tf

from trainer_module import features

# Parsed raw features ({ITEM: [n, 1] string, LABEL: [n, 1] string}) -> (item indices [n], label indices [n]).
PairIndexer = Callable[[Mapping[str, tf.Tensor]], tuple[tf.Tensor, tf.Tensor]]

# The raw features a pair record must carry for training, shaped as the pipeline's schema declares them.
RAW_PAIR_SPEC = {
    features.ITEM: tf.io.FixedLenFeature([1], tf.string),
    features.LABEL: tf.io.FixedLenFeature([1], tf.string),
}


def _files(file_pattern: str | Sequence[str]) -> list[str]:
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    if not files:
        raise FileNotFoundError(f"no pair example files match {patterns}")
    compressed = {f.endswith(".gz") for f in files}
    if len(compressed) > 1:
        raise ValueError(f"{patterns} mix gzip (.gz) and plain TFRecord files; expected one kind")
    return files


def _as_vector(value) -> tf.Tensor:
    if isinstance(value, tf.SparseTensor):
        return value.values
    return tf.reshape(value, [-1])


def transform_indexer(tf_transform_output) -> PairIndexer:
    """The Transform graph itself (`transform_features_layer`): exactly the mapping Transform defined."""
    layer = tf_transform_output.transform_features_layer()

    def to_indices(raw: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        transformed = layer(dict(raw))
        return _as_vector(transformed[features.ITEM_INDEX]), _as_vector(transformed[features.LABEL_INDEX])

    return to_indices


def vocabulary_indexer(vocabulary_file: str, vocabulary_size: int) -> PairIndexer:
    """A lookup table over a plain vocabulary file (one id per line, row = line number), unknown -> size.

    The same as `tft.apply_vocabulary(..., num_oov_buckets=1)` on that file (same `TextFileInitializer`;
    with one bucket its OOV index is always the vocabulary size; tests/trainer check both agree). Used where
    the Transform graph cannot go: benchmarks without Transform, and parameter-server workers, where a
    `StaticHashTable` created in the strategy's scope is copied to each worker instead of being looked up
    on the coordinator.
    """
    initializer = tf.lookup.TextFileInitializer(
        vocabulary_file,
        key_dtype=tf.string,
        key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        value_dtype=tf.int64,
        value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        vocab_size=vocabulary_size,
    )
    table = tf.lookup.StaticHashTable(initializer, default_value=tf.constant(vocabulary_size, tf.int64))

    def to_indices(raw: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        return (
            table.lookup(_as_vector(raw[features.ITEM])),
            table.lookup(_as_vector(raw[features.LABEL])),
        )

    return to_indices


def pair_batches(
    file_pattern: str | Sequence[str],
    to_indices: PairIndexer,
    batch_size: int,
    vocabulary_size: int,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    cache_path: str | None = None,
    symmetric: bool = False,
) -> tf.data.Dataset:
    """One pass of (items [n], labels [n]) int64 batches, n <= batch_size (OOV pairs removed).

    `file_pattern`: raw pair records (gzip TFRecords when the names end in .gz, as SessionExampleGen writes
    them); only the item and label features are parsed. `to_indices`: `transform_indexer` or
    `vocabulary_indexer`; indices >= `vocabulary_size` are OOV. `shuffle_buffer` > 0 shuffles files and
    batches. `cache_path` (a local file prefix, or "" for memory) keeps the index batches after the first
    pass: later epochs read whole batches back instead of decoding and looking up records again, which on
    two cores costs about as much CPU as the training step itself. `symmetric` adds each pair reversed.
    """
    files = _files(file_pattern)
    compression = "GZIP" if files[0].endswith(".gz") else ""
    shuffle = shuffle_buffer > 0
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression, buffer_size=8 << 20).batch(
            batch_size
        ),
        cycle_length=min(len(files), 2),
        num_parallel_calls=min(len(files), 2),
        deterministic=not shuffle,
    )

    def parse(serialized):
        items, labels = to_indices(tf.io.parse_example(serialized, RAW_PAIR_SPEC))
        keep = tf.logical_and(items < vocabulary_size, labels < vocabulary_size)
        return tf.boolean_mask(items, keep), tf.boolean_mask(labels, keep)

    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle).filter(
        lambda items, _: tf.size(items) > 0
    )
    if symmetric:
        dataset = dataset.map(both_directions, num_parallel_calls=tf.data.AUTOTUNE)
    if cache_path is not None:
        dataset = dataset.cache(cache_path)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def both_directions(items: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A batch of (item -> label) pairs plus the same pairs reversed: co-engagement is not one-way."""
    return tf.concat([items, labels], 0), tf.concat([labels, items], 0)


def write_pairs(
    path: str, items: Sequence[str], labels: Sequence[str], timestamps: Sequence[int] | None = None
) -> str:
    """Writes raw (item, label, timestamp) pairs as a gzip TFRecord of tf.Examples, as SessionExampleGen does.

    For tests and benchmarks that drive the trainer without the pipeline.
    """
    timestamps = [0] * len(items) if timestamps is None else timestamps
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for item, label, timestamp in zip(items, labels, timestamps, strict=True):
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        features.ITEM: _bytes_feature(item),
                        features.LABEL: _bytes_feature(label),
                        features.TIMESTAMP: tf.train.Feature(
                            int64_list=tf.train.Int64List(value=[timestamp])
                        ),
                    }
                )
            )
            writer.write(example.SerializeToString())
    return path


def _bytes_feature(value: str | bytes) -> tf.train.Feature:
    value = value.encode("utf-8") if isinstance(value, str) else value
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def write_vocabulary(path: str, ids: Sequence[str | bytes]) -> str:
    """A plain vocabulary file (one id per line, row = line number), the format Transform writes."""
    lines = [item if isinstance(item, bytes) else str(item).encode("utf-8") for item in ids]
    for row, item in enumerate(lines):
        if b"\n" in item or b"\r" in item:
            raise ValueError(f"{path}: id at row {row} ({item!r}) has a line break; a line holds one id")
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(b"".join(item + b"\n" for item in lines))
    return path
