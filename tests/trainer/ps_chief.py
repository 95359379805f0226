"""The coordinator of the local parameter-server cluster in test_distributed.py, run as its own process.

Usage: TF_CONFIG=... python -m tests.trainer.ps_chief OUT_DIR. Trains a few steps on planted pairs, writes
OUT_DIR/result.json (history, shard count, whether planted neighbours were learnt).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import tensorflow as tf

from trainer_module.distributed import parameter_server_task, train_with_parameter_servers
from trainer_module.input_pipeline import pair_batches, vocabulary_indexer, write_pairs, write_vocabulary
from trainer_module.model import TrainerSettings, write_sampler_file

NUM_ITEMS = 40


def main(out_dir: str) -> None:
    task = parameter_server_task(os.environ["TF_CONFIG"])
    rng = np.random.default_rng(0)
    items = rng.integers(0, NUM_ITEMS, size=6000)
    labels = items ^ 1  # planted: 2i and 2i+1 always co-occur
    ids = [f"item-{k}" for k in range(NUM_ITEMS)]
    files = [
        write_pairs(  # raw id strings, plus one OOV pair that every worker must drop
            os.path.join(out_dir, f"pairs-{i}.gz"),
            [ids[k] for k in items[i::2]] + [ids[0]],
            [ids[k] for k in labels[i::2]] + ["never-seen"],
        )
        for i in range(2)
    ]
    vocabulary_file = write_vocabulary(os.path.join(out_dir, "vocabulary.txt"), ids)
    sampler = write_sampler_file(np.bincount(labels, minlength=NUM_ITEMS + 1) + 1, f"{out_dir}/counts.txt")
    settings = TrainerSettings(embedding_dim=16, num_negatives=8, batch_size=256, epochs=4, learning_rate=0.2)

    def datasets():  # in the strategy's scope: the lookup table is copied to the worker
        to_indices = vocabulary_indexer(vocabulary_file, NUM_ITEMS)

        def train():
            return pair_batches(files, to_indices, settings.batch_size, NUM_ITEMS, 4, settings.seed)

        def evaluation():
            return pair_batches(files[:1], to_indices, settings.batch_size, NUM_ITEMS)

        return train, evaluation

    model, history, shards = train_with_parameter_servers(
        task, NUM_ITEMS + 1, settings, sampler, datasets, min_shard_bytes=256
    )
    logits = model.softmax_logits(tf.constant(np.arange(0, NUM_ITEMS, 2), tf.int64)).numpy()
    planted = float((logits.argmax(axis=1) == np.arange(0, NUM_ITEMS, 2) + 1).mean())
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump({"history": history, "shards": shards, "planted_top1": planted}, f)


if __name__ == "__main__":
    main(sys.argv[1])
