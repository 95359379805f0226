"""Sweeps the trainer settings that matter for skip-gram-style recommenders, choosing on validation only.

Caselles-Dupre et al. (RecSys 2018, "Word2vec applied to recommendation: hyperparameters matter") found the
negative-sampling exponent, the window, the epochs and the learning rate decisive on recommendation data. This
tool trains the project's own model (trainer_module.model, the code the Trainer runs) on the pipeline's own
split (bench/reference_gensim.build_split: rare-item filter, leave-last-out, sessions), scores the cosine
neighbours of every validation query after each epoch, and reports the test figure of the configuration chosen
on validation only. Nothing here is specific to MovieLens: point --ratings at any user/item/timestamp log.

    python -m bench.sweep_trainer [--ratings FILE] [--grid GRID.json] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from bench.docs_section import write_section
from bench.reference_gensim import ReferenceSplit, default_split, machine_description
from components.related_evaluator import metrics_lib
from components.session_example_gen import sessions_lib
from components.session_example_gen.sessions_lib import SessionSettings

START, END = "<!-- sweep-trainer:start -->", "<!-- sweep-trainer:end -->"

# Each entry overrides TrainerSettings defaults (and "window", the session window); epochs are all tried.
DEFAULT_GRID: list[dict] = [
    {},
    {"symmetric_pairs": False},
    {"sampler_exponent": 0.0},
    {"sampler_exponent": -0.5},
    {"learning_rate": 0.1},
    {"learning_rate": 0.02},
    {"batch_size": 2048},
    {"window": 10},
    {"embedding_dim": 64},
    {"optimizer": "adam", "learning_rate": 0.002, "batch_size": 256},
]


def training_pairs(split: ReferenceSplit, window: int, vocabulary: dict[str, int]) -> tuple[np.ndarray, ...]:
    """(items, labels) index arrays of the pipeline's window pairs over the training sessions."""
    items, labels = [], []
    for sentence in split.sentences:
        session = tuple((item, 0) for item in sentence)
        for pair in sessions_lib.session_pairs(session, window):
            items.append(vocabulary[pair.item])
            labels.append(vocabulary[pair.label])
    return np.array(items, dtype=np.int64), np.array(labels, dtype=np.int64)


def cosine_answer(embeddings: np.ndarray, items: Sequence[str], vocabulary: dict[str, int]):
    """An `answer(query_items, k)` over exact cosine neighbours (ScaNN's recall is checked elsewhere)."""
    normalised = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)

    def answer(query_items: Sequence[str], k: int) -> list[list[str]]:
        rows = [vocabulary.get(item) for item in query_items]
        known = [r for r in rows if r is not None]
        ranked = {}
        if known:
            scores = normalised[known] @ normalised.T
            scores[np.arange(len(known)), known] = -np.inf
            top = np.argsort(-scores, axis=1)[:, :k]
            ranked = {row: [items[i] for i in best] for row, best in zip(known, top, strict=True)}
        return [ranked.get(r, []) if r is not None else [] for r in rows]

    return answer


def run_config(split: ReferenceSplit, overrides: dict, max_epochs: int) -> dict:
    """Trains one configuration, scoring validation (and test, recorded, never chosen on) per epoch."""
    import tensorflow as tf

    from trainer_module.input_pipeline import both_directions
    from trainer_module.model import TrainerSettings, build_model, write_sampler_file

    window = overrides.get("window", SessionSettings().window)
    trainer_fields = {k: v for k, v in overrides.items() if k != "window"}
    settings = dataclasses.replace(TrainerSettings(), **trainer_fields, epochs=1)
    items = split.catalogue
    vocabulary = {item: row for row, item in enumerate(items)}
    centres, contexts = training_pairs(split, window, vocabulary)
    counts = [max(split.popularity.get(item, 1), 1) for item in items] + [1]
    sampler = write_sampler_file(counts, os.path.join(os.environ.get("TMPDIR", "/tmp"), "sweep_sampler.txt"))
    model = build_model(len(items) + 1, settings, sampler)
    dataset = tf.data.Dataset.from_tensor_slices((centres, contexts)).shuffle(
        len(centres), seed=settings.seed
    )
    dataset = dataset.batch(settings.batch_size)
    if settings.symmetric_pairs:
        dataset = dataset.map(both_directions)
    buckets = metrics_lib.popularity_buckets(split.popularity)
    epochs, started = [], time.time()
    for epoch in range(1, max_epochs + 1):
        model.fit(dataset.prefetch(2), epochs=1, verbose=0)
        answer = cosine_answer(model.item_embeddings().numpy()[: len(items)], items, vocabulary)
        scores = {
            name: metrics_lib.evaluate_source(queries, answer, buckets, len(items))
            for name, queries in (("validation", split.validation), ("test", split.test))
        }
        epochs.append(
            {
                "epoch": epoch,
                "validation": scores["validation"]["hit_rate"]["10"],
                "test": scores["test"]["hit_rate"]["10"],
                "test_hr50": scores["test"]["hit_rate"]["50"],
            }
        )
    best = max(epochs, key=lambda e: (e["validation"], -e["epoch"]))
    return {
        "overrides": overrides,
        "pairs": len(centres),
        "seconds": time.time() - started,
        "epochs": epochs,
        "best": best,
    }


def table(results: Sequence[dict]) -> str:
    lines = [
        "| settings (over the defaults) | best epoch | validation HR@10 | test HR@10 | test HR@50 |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        best = result["best"]
        name = ", ".join(f"{k}={v}" for k, v in result["overrides"].items()) or "defaults"
        lines.append(
            f"| {name} | {best['epoch']} | {best['validation']:.4f} | {best['test']:.4f} "
            f"| {best['test_hr50']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", default="work/data/ml-100k/ratings.tsv")
    parser.add_argument("--grid", default=None, help="JSON list of settings overrides (default: built in)")
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument(
        "--base",
        default="{}",
        help="JSON overrides applied under every grid entry (the sweep's starting point)",
    )
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    grid = DEFAULT_GRID
    if args.grid:
        with open(args.grid, encoding="utf-8") as f:
            grid = json.load(f)
    ratings, split = default_split(args.ratings)
    print(f"{len(split.sentences)} sessions, {len(split.catalogue)} items, {len(split.validation)} queries")
    results = []
    for overrides in grid:
        result = run_config(split, {**json.loads(args.base), **overrides}, args.max_epochs)
        result["overrides"] = overrides
        results.append(result)
        print(json.dumps(result), flush=True)
    chosen = max(results, key=lambda r: r["best"]["validation"])
    text = "\n".join(
        [
            "### Trainer settings sweep (chosen on validation, test reported)",
            "",
            f"`python -m bench.sweep_trainer --max-epochs {args.max_epochs} --write` on {ratings}, "
            f"{datetime.date.today().isoformat()}, "
            f"{machine_description()}. Cosine neighbours of the pipeline's validation queries "
            "(third-to-last -> "
            "second-to-last engagement), after each epoch up to "
            f"{args.max_epochs}; the best epoch is chosen on validation.",
            "",
            table(results),
            "",
            "Best on validation: "
            f"{', '.join(f'{k}={v}' for k, v in chosen['overrides'].items()) or 'defaults'} "
            f"at epoch {chosen['best']['epoch']} (test HR@10 {chosen['best']['test']:.4f}).",
        ]
    )
    print(text)
    if args.write:
        write_section(text, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
