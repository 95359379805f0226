"""Transformed TFRecord pairs -> (item indices, label indices) batches that keep both cores busy.

Why it is built this way:
- records are read in blocks of `batch_size` consecutive records of one file (two files read in parallel,
  interleaved block by block) and parsed a whole block at a time: one `parse_example` call per batch;
- consecutive records usually share their item (SessionExampleGen writes a window's pairs together), and the
  model computes a distinct item's logits once per batch (`sampled_softmax.sampled_softmax_loss`), so batches
  keep those runs together: shuffling moves whole blocks (a buffer of `shuffle_buffer` batches), not records;
- parsing runs in parallel and ahead of training (`prefetch`), so the training step never waits on input.
Pairs touching the OOV bucket are dropped: the OOV row is not an item to learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

from trainer_module import features


def _files(file_pattern: str | Sequence[str]) -> list[str]:
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    if not files:
        raise FileNotFoundError(f"no transformed example files match {patterns}")
    compressed = {f.endswith(".gz") for f in files}
    if len(compressed) > 1:
        raise ValueError(f"{patterns} mix gzip (.gz) and plain TFRecord files; expected one kind")
    return files


def _as_vector(value) -> tf.Tensor:
    if isinstance(value, tf.SparseTensor):
        return value.values
    return tf.reshape(value, [-1])


def pair_batches(
    file_pattern: str | Sequence[str],
    feature_spec: Mapping[str, tf.io.FixedLenFeature | tf.io.VarLenFeature],
    batch_size: int,
    vocabulary_size: int,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    cache_path: str | None = None,
    symmetric: bool = False,
) -> tf.data.Dataset:
    """One pass of (items [n], labels [n]) int64 batches, n <= batch_size (OOV pairs removed).

    `feature_spec` is the transformed feature spec (`TFTransformOutput.transformed_feature_spec()`); only
    the item and label index features are parsed. `shuffle_buffer` > 0 shuffles files and batches.
    `cache_path` (a local file prefix, or "" for memory) keeps the parsed batches after the first pass:
    later epochs read whole batches back instead of decoding records one by one, which on two cores costs
    about as much CPU as the training step itself. `symmetric` adds each pair reversed to its batch.
    """
    files = _files(file_pattern)
    compression = "GZIP" if files[0].endswith(".gz") else ""
    spec = {name: feature_spec[name] for name in (features.ITEM_INDEX, features.LABEL_INDEX)}
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
        parsed = tf.io.parse_example(serialized, spec)
        items = _as_vector(parsed[features.ITEM_INDEX])
        labels = _as_vector(parsed[features.LABEL_INDEX])
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


def write_pairs(path: str, items: Sequence[int], labels: Sequence[int]) -> str:
    """Writes (item_index, label_index) pairs as a gzip TFRecord of tf.Examples, as Transform does.

    For tests and benchmarks that drive the trainer without running Transform.
    """
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for item, label in zip(items, labels, strict=True):
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        features.ITEM_INDEX: tf.train.Feature(int64_list=tf.train.Int64List(value=[item])),
                        features.LABEL_INDEX: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    }
                )
            )
            writer.write(example.SerializeToString())
    return path


# The transformed feature spec of the pairs `write_pairs` writes (and Transform writes for this project).
PAIR_FEATURE_SPEC = {
    features.ITEM_INDEX: tf.io.FixedLenFeature([], tf.int64),
    features.LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64),
}
