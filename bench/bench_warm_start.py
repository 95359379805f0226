"""Warm start vs cold start on a sliding window of a synthetic log: how many warm epochs match a cold retrain.

Day 1's window is days 0-6 of a synthetic log, day 2's days 1-7 (the next daily rerun). A few items enter on
day 2 only (new) and a few leave after day 1 (dropped), so the warm start meets all three cases. A base model
is trained cold on day 1 (`--epochs`, the Trainer's default); on day 2 a cold model trains the same epochs,
and a warm model starts from the base model's rows, matched by id exactly as the Trainer does
(trainer_module.row_matching), for up to `--max-warm-epochs`. Each is scored after every epoch on day 2's
validation queries (the pipeline's split: each user's held-out last engagements) with the served scorer
(hidden layer . softmax row); the test figure is printed beside it, never chosen on. The project's own model
and pair generation (bench.sweep_trainer) are used, not the TFX pipeline, so only training differs.

    python -m bench.bench_warm_start [--items 2000] [--events 300000] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from bench.docs_section import report
from bench.reference_gensim import ReferenceSplit, build_split, machine_description
from bench.sweep_trainer import model_arrays, scorer_answer, training_pairs
from components.related_evaluator import metrics_lib
from components.session_example_gen.event_rows import Event
from components.session_example_gen.session_settings import SessionSettings
from engagement_data import synthetic

START, END = "<!-- warm-start:start -->", "<!-- warm-start:end -->"
WINDOW_DAYS = synthetic.SESSIONS_PER_USER - 1  # day 1: days 0..6, day 2: days 1..7
CHANGED_SHARE = 0.03  # of the items: as many enter on day 2 only as leave after day 1


def daily_windows(items: int, events: int, seed: int) -> tuple[list[Event], list[Event]]:
    """(day 1's events, day 2's events) of one synthetic log, with new and dropped items planted."""
    settings = synthetic.SyntheticSettings(items=items, events=events, seed=seed)
    world = synthetic.make_world(settings)
    rng = np.random.default_rng([seed, 1])
    chunk = synthetic.generate_chunk(
        world, settings, 0, synthetic.session_lengths(settings, events, rng), rng
    )
    day = (chunk.timestamp - synthetic.START_TIMESTAMP) // synthetic.DAY_SECONDS
    changed = np.random.default_rng(seed + 7).permutation(items)[: 2 * int(CHANGED_SHARE * items)]
    new, dropped = changed[: len(changed) // 2], changed[len(changed) // 2 :]
    in_day_1 = (day < WINDOW_DAYS) & ~np.isin(chunk.item, new)
    in_day_2 = (day >= 1) & ~np.isin(chunk.item, dropped)

    def events_of(mask):
        return [
            Event(f"u{u}", f"i{i}", int(t))
            for u, i, t in zip(chunk.user[mask], chunk.item[mask], chunk.timestamp[mask], strict=True)
        ]

    return events_of(in_day_1), events_of(in_day_2)


@dataclasses.dataclass
class Trained:
    epochs: list[dict]  # per epoch: validation and test HR@10, cumulative training seconds


def _catalogue(split: ReferenceSplit) -> tuple[list[str], dict[str, int], np.ndarray]:
    """Items in the pipeline's vocabulary order (most engaged first), their rows, their counts."""
    items = sorted(split.popularity, key=lambda item: (-split.popularity[item], item))
    items += [item for item in split.catalogue if item not in split.popularity]
    counts = np.array([max(split.popularity.get(item, 1), 1) for item in items], dtype=np.int64)
    return items, {item: row for row, item in enumerate(items)}, counts


def train(
    split: ReferenceSplit,
    epochs: int,
    base=None,
    evaluate: bool = True,
    window: int = SessionSettings().window,
):
    """Trains the project's model on `split`; with `base` (a warm_start_files.ModelState), warm from it
    exactly as the Trainer does. Returns the per-epoch scores (when `evaluate`; epoch 0: the warm-started
    model before training), the trained state and the warm start's row match."""
    import tensorflow as tf

    from trainer_module.input_pipeline import both_directions
    from trainer_module.model import TrainerSettings, build_model, write_sampler_file
    from trainer_module.warm_start import model_state, warm_start_from_state

    settings = dataclasses.replace(TrainerSettings(), epochs=1)
    items, rows, counts = _catalogue(split)
    sampler = write_sampler_file([*counts.tolist(), 1], os.path.join(tempfile.mkdtemp(), "sampler.txt"))
    model = build_model(len(items) + 1, settings, sampler)
    item_ids = [item.encode() for item in items]
    match = None
    if base is not None:
        match = warm_start_from_state(model, base, item_ids, 1)
    sessions = [np.array([rows[item] for item in sentence], dtype=np.int64) for sentence in split.sentences]
    centres, contexts = training_pairs(sessions, window)
    dataset = (
        tf.data.Dataset.from_tensor_slices((centres, contexts))
        .shuffle(len(centres), seed=settings.seed)
        .batch(settings.batch_size)
        .map(both_directions)
        .prefetch(2)
    )
    buckets = metrics_lib.popularity_buckets(split.popularity)
    scores, seconds = [], 0.0
    for epoch in range(0 if base is not None else 1, epochs + 1):
        if epoch:
            started = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            seconds += time.perf_counter() - started
        if evaluate:
            answer = scorer_answer(model_arrays(model, len(items)), "next", items, rows)
            hr = {
                name: metrics_lib.evaluate_source(queries, answer, buckets, len(items))["hit_rate"]["10"]
                for name, queries in (("validation", split.validation), ("test", split.test))
            }
            scores.append({"epoch": epoch, "seconds": seconds, **hr})
    return scores, model_state(model, item_ids, 1), match


def table(runs: Sequence[tuple[str, list[dict], Sequence[int]]]) -> str:
    """One row per (model, epoch) shown: (name, per-epoch scores, epochs to show)."""
    lines = [
        "| day 2 model | epochs | train seconds | validation HR@10 | test HR@10 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, scores, chosen in runs:
        by_epoch = {s["epoch"]: s for s in scores}
        for epoch in chosen:
            s = by_epoch[epoch]
            lines.append(
                f"| {name} | {epoch} | {s['seconds']:.1f} | {s['validation']:.4f} | {s['test']:.4f} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--epochs", type=int, default=None, help="cold epochs (default: the Trainer's)")
    parser.add_argument("--max-warm-epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write the table to docs/BENCHMARKS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from trainer_module.settings import TrainerSettings

    args = parse_args(argv)
    cold_epochs = args.epochs or TrainerSettings().epochs
    day_1, day_2 = daily_windows(args.items, args.events, args.seed)
    settings = SessionSettings()
    split_1, split_2 = build_split(day_1, settings), build_split(day_2, settings)
    _, base, _ = train(split_1, cold_epochs, evaluate=False)
    cold, _, _ = train(split_2, cold_epochs)
    warm, _, match = train(split_2, args.max_warm_epochs, base=base)
    weights_only = dataclasses.replace(base, arrays={k: v for k, v in base.arrays.items() if "." not in k})
    fresh_optimizer, _, _ = train(split_2, args.max_warm_epochs, base=weights_only)
    shown_cold = sorted({1, 2, 3, 5, cold_epochs} & set(range(1, cold_epochs + 1)))
    shown_warm = list(range(0, args.max_warm_epochs + 1))
    body = "\n".join(
        [
            f"Synthetic log: {args.items} items, {args.events} events (seed {args.seed}); day 1 = days 0-"
            f"{WINDOW_DAYS - 1}, day 2 = days 1-{WINDOW_DAYS} ({len(day_1)} and {len(day_2)} events). Warm "
            f"start on day 2: {match.carried_over} items carried over, {match.new} new, {match.dropped} "
            f"dropped. Base model: {cold_epochs} cold epochs on day 1. Validation: {len(split_2.validation)} "
            f"queries, scorer hidden . softmax row (what `pin2vec` serves). `warm` carries the weights and "
            "Adagrad's accumulators (what the Trainer does); `warm, fresh optimizer` the weights only. "
            f"Epoch 0: the warm-started model before any training. {machine_description()}.",
            "",
            table(
                [
                    ("cold", cold, shown_cold),
                    ("warm", warm, shown_warm),
                    ("warm, fresh optimizer", fresh_optimizer, shown_warm),
                ]
            ),
            "",
            "Command: `python -m bench.bench_warm_start "
            + " ".join(argv if argv is not None else sys.argv[1:])
            + "`",
        ]
    )
    return report("## Warm start (`bench/bench_warm_start.py`)\n\n" + body, START, END, args.write)


if __name__ == "__main__":
    raise SystemExit(main())
