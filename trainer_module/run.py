"""TFX Trainer entry point (`run_fn`): raw pair examples + Transform graph -> datasets -> model -> SavedModel.

Referenced by dotted path (`trainer_module.run.run_fn`), so a run installs nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from absl import logging
from tfx import v1 as tfx

from trainer_module import features
from trainer_module.distributed import (
    DatasetFns,
    parameter_server_task,
    serve_forever,
    train_with_parameter_servers,
)
from trainer_module.export import export_serving_model
from trainer_module.input_pipeline import (
    PairIndexer,
    pair_batches,
    transform_indexer,
    vocabulary_indexer,
    write_vocabulary,
)
from trainer_module.model import TrainerSettings, build_model, write_sampler_file
from trainer_module.vocabulary_file import read_vocabulary
from trainer_module.warm_start import model_state, warm_start_model
from trainer_module.warm_start_files import StartReport, model_artifact_dir, write_model_state

TRAINER_CONFIG_KEY = "trainer"
HISTORY_FILE = "history.json"  # in fn_args.model_run_dir


def _datasets(
    fn_args,
    to_indices: PairIndexer,
    settings: TrainerSettings,
    vocabulary_size: int,
    cache_dir: str | None,
) -> DatasetFns:
    """(train, eval) dataset builders over the raw pair examples; see input_pipeline.pair_batches.

    `to_indices` maps the parsed raw ids to Transform's indices. `cache_dir` None: no input cache (cluster
    workers have no shared local directory).
    """
    cached = settings.cache_input and cache_dir is not None

    def train():
        cache = os.path.join(cache_dir, "train") if cached else None
        return pair_batches(
            fn_args.train_files,
            to_indices,
            settings.batch_size,
            vocabulary_size,
            settings.shuffle_buffer,
            settings.seed,
            cache_path=cache,
            symmetric=settings.symmetric_pairs,
        )

    def evaluation():
        cache = os.path.join(cache_dir, "eval") if cached else None
        return pair_batches(
            fn_args.eval_files, to_indices, settings.batch_size, vocabulary_size, cache_path=cache
        )

    return train, evaluation


def write_history(history: dict, model_run_dir: str) -> str:
    """Per-epoch metrics ({"loss": [...], "val_loss": [...]}) as JSON, for the run report's loss curve."""
    path = os.path.join(model_run_dir, HISTORY_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump({k: [float(v) for v in values] for k, values in history.items()}, f, indent=1)
    return path


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    settings = TrainerSettings.from_config((fn_args.custom_config or {}).get(TRAINER_CONFIG_KEY))
    task = parameter_server_task(os.environ.get("TF_CONFIG"))
    if task is not None and task.task_type in ("worker", "ps"):
        logging.info("Serving as %s %d of a parameter-server cluster", task.task_type, task.task_index)
        serve_forever(task)
        return
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    vocabulary, counts = read_vocabulary(tf_transform_output)  # item ids and counts in row order
    vocabulary_size = len(counts)
    started = StartReport(warm=False, new=vocabulary_size)
    logging.info("Training on a vocabulary of %d items with %s", vocabulary_size, settings)
    # Every training pair puts its item and its label into the counts once: their sum is 2 x pairs.
    pair_updates_per_epoch = sum(counts) if settings.symmetric_pairs else sum(counts) // 2

    sampler_file = write_sampler_file(
        counts + [1] * features.NUM_OOV_BUCKETS, os.path.join(fn_args.model_run_dir, "sampler_counts.txt")
    )
    num_classes = vocabulary_size + features.NUM_OOV_BUCKETS
    cache_dir = tempfile.mkdtemp(prefix="pin2vec-input-cache-")
    try:
        if task is not None:
            # The Transform graph's tables would stay on the coordinator; workers get a copy of the same
            # lookup over the same ids, as a plain file (input_pipeline.vocabulary_indexer).
            vocabulary_file = write_vocabulary(
                os.path.join(fn_args.model_run_dir, "vocabulary.txt"), vocabulary
            )
            logging.info("Training with ParameterServerStrategy: %s", task.cluster)
            if fn_args.base_model:
                logging.warning("Parameter-server training starts cold; the base model is not used")
                started = StartReport(
                    warm=False,
                    new=vocabulary_size,
                    base_model=model_artifact_dir(fn_args.base_model),
                    note="parameter-server training starts cold",
                )
            epochs = settings.planned_epochs(pair_updates_per_epoch, warm=False)
            model, history, _ = train_with_parameter_servers(
                task,
                num_classes,
                dataclasses.replace(settings, epochs=epochs),
                sampler_file,
                lambda: _datasets(
                    fn_args,
                    vocabulary_indexer(vocabulary_file, vocabulary_size),
                    settings,
                    vocabulary_size,
                    None,
                ),
            )
        else:
            train, evaluation = _datasets(
                fn_args, transform_indexer(tf_transform_output), settings, vocabulary_size, cache_dir
            )
            model = build_model(num_classes, settings, sampler_file)
            started = warm_start_model(model, fn_args.base_model, vocabulary, features.NUM_OOV_BUCKETS)
            epochs = settings.planned_epochs(pair_updates_per_epoch, started.warm)
            history = model.fit(
                train(),
                epochs=epochs,
                validation_data=evaluation(),
                verbose=2,
                callbacks=[
                    tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")
                ],
            ).history
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    logging.info(
        "Trained %d epochs of %d pair updates (cap: %d pair updates in all, 0 = none)",
        epochs,
        pair_updates_per_epoch,
        settings.max_pair_updates,
    )
    write_history(history, fn_args.model_run_dir)
    export_serving_model(model, tf_transform_output, fn_args.serving_model_dir)
    logging.info("Exported the embedding model to %s", fn_args.serving_model_dir)
    # What the next run's warm start reads, and how this one started (recorded on the Model artifact).
    write_model_state(
        model_artifact_dir(fn_args.serving_model_dir),
        model_state(model, vocabulary, features.NUM_OOV_BUCKETS),
        started,
    )
