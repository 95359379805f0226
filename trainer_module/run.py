"""TFX Trainer entry point (`run_fn`): fn_args -> datasets -> model -> SavedModel.

Referenced by dotted path (`trainer_module.run.run_fn`), so a run installs nothing.
"""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from trainer_module import features
from trainer_module.export import export_serving_model
from trainer_module.model import TrainerSettings, build_model, write_sampler_file

TRAINER_CONFIG_KEY = "trainer"


def read_vocabulary_counts(tf_transform_output: tft.TFTransformOutput) -> list[int]:
    """Counts in vocabulary order; fails loudly if the two vocabulary files disagree on order."""
    vocabulary = tf_transform_output.vocabulary_by_name(features.VOCABULARY)
    path = tf_transform_output.vocabulary_file_by_name(features.VOCABULARY_COUNTS)
    counts = []
    with tf.io.gfile.GFile(path, "rb") as f:
        for line_no, line in enumerate(f):
            count, _, token = line.rstrip(b"\n").partition(b" ")
            if line_no >= len(vocabulary) or token != vocabulary[line_no]:
                raise ValueError(
                    f"{path}:{line_no + 1}: vocabulary counts out of step with '{features.VOCABULARY}' "
                    f"(got token {token!r}); rerun Transform"
                )
            counts.append(int(count))
    if len(counts) != len(vocabulary):
        raise ValueError(f"{path}: {len(counts)} counts for a vocabulary of {len(vocabulary)} items")
    return counts


def make_dataset(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    vocabulary_size: int,
    seed: int,
) -> tf.data.Dataset:
    """(item indices, label indices) batches, one pass, pairs touching the OOV bucket removed."""
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=features.LABEL_INDEX, num_epochs=1, shuffle_seed=seed
        ),
        tf_transform_output.transformed_metadata.schema,
    )

    def known_pairs(batch, labels):
        items = tf.reshape(batch[features.ITEM_INDEX], [-1])
        labels = tf.reshape(labels, [-1])
        keep = tf.logical_and(items < vocabulary_size, labels < vocabulary_size)
        return tf.boolean_mask(items, keep), tf.boolean_mask(labels, keep)

    return (
        dataset.map(known_pairs, num_parallel_calls=tf.data.AUTOTUNE)
        .filter(lambda items, _: tf.size(items) > 0)
        .prefetch(tf.data.AUTOTUNE)
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    settings = TrainerSettings.from_config((fn_args.custom_config or {}).get(TRAINER_CONFIG_KEY))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    counts = read_vocabulary_counts(tf_transform_output)
    vocabulary_size = len(counts)
    logging.info("Training on a vocabulary of %d items with %s", vocabulary_size, settings)

    sampler_file = write_sampler_file(
        counts + [1] * features.NUM_OOV_BUCKETS, os.path.join(fn_args.model_run_dir, "sampler_counts.txt")
    )
    datasets = [
        make_dataset(
            files,
            fn_args.data_accessor,
            tf_transform_output,
            settings.batch_size,
            vocabulary_size,
            settings.seed,
        )
        for files in (fn_args.train_files, fn_args.eval_files)
    ]
    model = build_model(vocabulary_size + features.NUM_OOV_BUCKETS, settings, sampler_file)
    model.fit(
        datasets[0],
        epochs=settings.epochs,
        validation_data=datasets[1],
        verbose=2,
        callbacks=[tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
    )
    export_serving_model(model, tf_transform_output, fn_args.serving_model_dir)
    logging.info("Exported the embedding model to %s", fn_args.serving_model_dir)
