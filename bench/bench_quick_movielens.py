"""Does a trainer setting keep MovieLens-100K quality? HR@10/50 after each of 5 epochs, per setting.

    python -m bench.bench_quick_movielens '[{"optimizer": "adam", "learning_rate": 0.002}, {}]'

Each JSON object overrides TrainerSettings defaults ({} = the defaults). Uses the reference split and
pairs of bench/reference_gensim.py and bench/sweep_trainer.py (leave-last-out per user, the pipeline's
window pairs) and exact cosine neighbours of the trained item embeddings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf

from bench.reference_gensim import build_split, read_events
from bench.sweep_trainer import cosine_answer, training_pairs
from components.related_evaluator import metrics_lib
from components.session_example_gen.sessions_lib import EventSource, SessionSettings
from trainer_module.model import TrainerSettings, build_model, write_sampler_file

RATINGS = "work/data/ml-100k/ratings.tsv"  # `pin2vec data movielens-100k`


def main(configs: list[dict]) -> None:
    source = EventSource(path=RATINGS, user_col="user_id", item_col="item_id", time_col="timestamp")
    split = build_split(read_events(source.path, source), SessionSettings())
    items = split.catalogue
    vocabulary = {item: row for row, item in enumerate(items)}
    centres, contexts = training_pairs(split, SessionSettings().window, vocabulary)
    counts = [max(split.popularity.get(item, 1), 1) for item in items] + [1]
    sampler = write_sampler_file(counts, os.path.join(os.environ.get("TMPDIR", "/tmp"), "ml_sampler.txt"))
    buckets = metrics_lib.popularity_buckets(split.popularity)
    print(f"{len(items):,} items, {len(centres):,} pairs", flush=True)
    for config in configs:
        settings = dataclasses.replace(TrainerSettings(), **config, epochs=1)
        model = build_model(len(items) + 1, settings, sampler)
        dataset = (
            tf.data.Dataset.from_tensor_slices((centres, contexts))
            .shuffle(len(centres), seed=settings.seed)
            .batch(settings.batch_size)
            .prefetch(2)
        )
        rows, started = [], time.time()
        for epoch in range(1, 6):
            model.fit(dataset, verbose=0)
            answer = cosine_answer(model.item_embeddings().numpy()[: len(items)], items, vocabulary)
            hr = {
                name: metrics_lib.evaluate_source(queries, answer, buckets, len(items))["hit_rate"]
                for name, queries in (("validation", split.validation), ("test", split.test))
            }
            rows.append(
                f"epoch {epoch}: validation HR@10 {hr['validation']['10']:.3f}, test HR@10 "
                f"{hr['test']['10']:.3f}, test HR@50 {hr['test']['50']:.3f}"
            )
        print(f"{config or 'defaults'} ({time.time() - started:.0f} s)\n  " + "\n  ".join(rows), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else [{}])
