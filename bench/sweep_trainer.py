"""Sweeps the trainer settings that matter for skip-gram-style recommenders, choosing on validation only.

Caselles-Dupre et al. (RecSys 2018, "Word2vec applied to recommendation: hyperparameters matter") found the
negative-sampling exponent, the window, the epochs and the learning rate decisive on recommendation data. This
tool trains the project's own model (trainer_module.model, the code the Trainer runs) on the pipeline's own
split (bench/reference_gensim.build_split: rare-item filter, leave-last-out, sessions), scores every
validation query after each epoch with each scorer (`SCORERS`: how the trained network ranks the catalogue
for a query item) and reports, per scorer, the test figure of the (settings, epoch) chosen on validation only.
Co-occurrence's figures on the same split (CooccurrenceCandidates' defaults) are printed for reference.
Nothing here is specific to MovieLens: point --ratings at any user/item/timestamp log.

    python -m bench.sweep_trainer [--ratings FILE] [--grid GRID.json] [--scorers similar,next] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from bench.docs_section import report
from bench.reference_gensim import ReferenceSplit, default_split, machine_description
from bench.sweep_cooccurrence import evaluate_lists, window_pairs
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.related_evaluator import metrics_lib
from components.session_example_gen import sessions_lib
from components.session_example_gen.session_settings import SessionSettings

START, END = "<!-- sweep-trainer:start -->", "<!-- sweep-trainer:end -->"

# Each entry overrides TrainerSettings defaults and the sweep's own settings (SWEEP_SETTINGS: the session
# window and frequent-item subsampling); epochs are all tried.
DEFAULT_GRID: list[dict] = [
    {},
    {"sampler_exponent": 1.0},
    {"sampler_exponent": 0.5},
    {"sampler_exponent": 0.0},
    {"sampler_exponent": -0.5},
    {"learning_rate": 0.02},
    {"learning_rate": 0.1},
    {"learning_rate": 0.2},
    {"window": 2},
    {"window": 3},
    {"window": 10},
    {"symmetric_pairs": False},
    {"subsample": 1e-3},
    {"subsample": 1e-4},
]

# Settings of the sweep's pair generation, not of TrainerSettings: the session window (SessionSettings) and
# word2vec's frequent-item subsampling threshold t (0: off; see `subsample_sessions`).
SWEEP_SETTINGS = {"window": SessionSettings().window, "subsample": 0.0}


# ---------------------------------------------------------------------------------------------------------
# Scorers: how the trained network ranks the catalogue for a query item.


@dataclasses.dataclass(frozen=True)
class ModelArrays:
    """The trained values a scorer needs, catalogue rows only (the OOV row is never a candidate)."""

    hidden: np.ndarray  # [items, dim] the ELU hidden layer of each item (what the Trainer exports)
    softmax_weights: np.ndarray  # [items, dim] the output layer's row of each item
    softmax_biases: np.ndarray  # [items]


def model_arrays(model, num_items: int) -> ModelArrays:
    """ModelArrays of a trainer_module.model.Pin2VecModel whose first `num_items` rows are the catalogue."""
    return ModelArrays(
        model.item_embeddings().numpy()[:num_items],
        model.softmax_weights.numpy()[:num_items],
        model.softmax_biases.numpy()[:num_items],
    )


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


# name -> (query vectors, candidate vectors, candidate biases or None):
# score(query q, candidate c) = queries[q] . candidates[c] (+ biases[c])
SCORERS: dict[str, Callable[[ModelArrays], tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {
    # cosine between hidden layers (input x input): the pin2vec_similar index
    "similar": lambda a: (_unit(a.hidden), _unit(a.hidden), None),
    # the network's own logit of the candidate as the next engagement (input x output), without its bias
    "next": lambda a: (a.hidden, a.softmax_weights, None),
    # the full logit: the softmax bias adds the candidate's learnt prior (mostly popularity)
    "next_bias": lambda a: (a.hidden, a.softmax_weights, a.softmax_biases),
    # input x output, both sides normalised: the logit's direction only
    "next_cosine": lambda a: (_unit(a.hidden), _unit(a.softmax_weights), None),
}


def scorer_answer(
    arrays: ModelArrays, scorer: str, items: Sequence[str], vocabulary: Mapping[str, int]
) -> Callable[[Sequence[str], int], list[list[str]]]:
    """An `answer(query_items, k)` for metrics_lib: the k best candidates by exact `SCORERS[scorer]` score,
    the query excluded ([] for an item the vocabulary does not know); ties go to the smaller row."""
    queries, candidates, biases = SCORERS[scorer](arrays)

    def answer(query_items: Sequence[str], k: int) -> list[list[str]]:
        rows = [vocabulary.get(item) for item in query_items]
        known = [r for r in rows if r is not None]
        ranked = {}
        if known:
            scores = queries[known] @ candidates.T
            if biases is not None:
                scores += biases[np.newaxis, :]
            scores[np.arange(len(known)), known] = -np.inf
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            ranked = {row: [items[i] for i in best] for row, best in zip(known, top, strict=True)}
        return [ranked.get(r, []) if r is not None else [] for r in rows]

    return answer


# ---------------------------------------------------------------------------------------------------------
# Pairs.


def subsample_sessions(
    sessions: Sequence[np.ndarray], counts: np.ndarray, threshold: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """word2vec's frequent-item subsampling (Mikolov et al. 2013): each occurrence of item w is dropped with
    probability 1 - sqrt(t / f(w)), f(w) = counts[w] / counts.sum(), t = `threshold` (items with f(w) <= t
    are always kept; threshold 0 keeps everything).

    `sessions`: arrays of item rows (indices into `counts`), one per session. Returns the sessions with the
    dropped occurrences removed, in order, empty ones included; windows are then taken over what is left,
    so a kept item reaches further past dropped popular ones. Draw with a fresh `rng` state per epoch for a
    new sample each epoch, as word2vec does.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if threshold < 0:
        raise ValueError(f"subsample threshold must be >= 0, got {threshold}")
    if threshold == 0 or not sessions:
        return [np.asarray(s) for s in sessions]
    frequency = counts / counts.sum()
    keep_probability = np.minimum(1.0, np.sqrt(threshold / np.maximum(frequency, 1e-300)))
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions])
    keep = rng.random(len(flat)) < keep_probability[flat]
    offsets = np.cumsum([len(s) for s in sessions])[:-1]
    return [s[k] for s, k in zip(np.split(flat, offsets), np.split(keep, offsets), strict=True)]


def training_pairs(sessions: Sequence[Sequence[int]], window: int) -> tuple[np.ndarray, np.ndarray]:
    """(items, labels) row arrays of the pipeline's window pairs (sessions_lib.session_pairs) over sessions
    of item rows."""
    items, labels = [], []
    for session in sessions:
        for pair in sessions_lib.session_pairs(tuple((int(item), 0) for item in session), window):
            items.append(pair.item)
            labels.append(pair.label)
    return np.array(items, dtype=np.int64), np.array(labels, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------
# One configuration.


def _metrics(scores: Mapping[str, dict]) -> dict:
    return {
        "validation": scores["validation"]["hit_rate"]["10"],
        "validation_mrr": scores["validation"]["mrr"]["10"],
        "test": scores["test"]["hit_rate"]["10"],
        "test_hr50": scores["test"]["hit_rate"]["50"],
    }


def best_epoch(epochs: Sequence[dict], scorer: str) -> dict:
    """The epoch with the scorer's best validation HR@10, then MRR@10, then the earliest (test: never)."""
    chosen = max(
        epochs,
        key=lambda e: (e["scores"][scorer]["validation"], e["scores"][scorer]["validation_mrr"], -e["epoch"]),
    )
    return {"epoch": chosen["epoch"], **chosen["scores"][scorer]}


def run_config(split: ReferenceSplit, overrides: dict, max_epochs: int, scorers: Sequence[str]) -> dict:
    """Trains one configuration, scoring validation (and test, recorded, never chosen on) per epoch and
    scorer."""
    import tensorflow as tf

    from trainer_module.input_pipeline import both_directions
    from trainer_module.model import TrainerSettings, build_model, write_sampler_file

    sweep = {**SWEEP_SETTINGS, **{k: v for k, v in overrides.items() if k in SWEEP_SETTINGS}}
    trainer_fields = {k: v for k, v in overrides.items() if k not in SWEEP_SETTINGS}
    settings = dataclasses.replace(TrainerSettings(), **trainer_fields, epochs=1)
    items = split.catalogue
    vocabulary = {item: row for row, item in enumerate(items)}
    sessions = [
        np.array([vocabulary[item] for item in sentence], dtype=np.int64) for sentence in split.sentences
    ]
    counts = np.array([max(split.popularity.get(item, 1), 1) for item in items], dtype=np.int64)
    sampler = write_sampler_file(
        [*counts.tolist(), 1], os.path.join(os.environ.get("TMPDIR", "/tmp"), "sweep_sampler.txt")
    )
    model = build_model(len(items) + 1, settings, sampler)

    def epoch_dataset(epoch: int) -> tuple[tf.data.Dataset, int]:
        kept = sessions
        if sweep["subsample"]:
            rng = np.random.default_rng([settings.seed, epoch])
            kept = subsample_sessions(sessions, counts, sweep["subsample"], rng)
        centres, contexts = training_pairs(kept, sweep["window"])
        dataset = tf.data.Dataset.from_tensor_slices((centres, contexts)).shuffle(
            len(centres), seed=settings.seed + epoch
        )
        dataset = dataset.batch(settings.batch_size)
        if settings.symmetric_pairs:
            dataset = dataset.map(both_directions)
        return dataset.prefetch(2), len(centres)

    buckets = metrics_lib.popularity_buckets(split.popularity)
    epochs = []
    dataset, pairs = epoch_dataset(1)
    for epoch in range(1, max_epochs + 1):
        started = time.perf_counter()
        if sweep["subsample"] and epoch > 1:  # a fresh sample each epoch; without it one shuffled dataset
            dataset, pairs = epoch_dataset(epoch)
        model.fit(dataset, epochs=1, verbose=0)
        trained = time.perf_counter() - started
        arrays = model_arrays(model, len(items))
        scores = {
            scorer: _metrics(
                {
                    name: metrics_lib.evaluate_source(
                        queries, scorer_answer(arrays, scorer, items, vocabulary), buckets, len(items)
                    )
                    for name, queries in (("validation", split.validation), ("test", split.test))
                }
            )
            for scorer in scorers
        }
        epochs.append({"epoch": epoch, "pairs": pairs, "train_seconds": trained, "scores": scores})
    return {
        "overrides": overrides,
        "seconds_per_epoch": statistics.median(e["train_seconds"] for e in epochs),
        "epochs": epochs,
        "best": {scorer: best_epoch(epochs, scorer) for scorer in scorers},
    }


# ---------------------------------------------------------------------------------------------------------
# Reporting.


def settings_name(overrides: Mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"


def table(results: Sequence[dict], scorers: Sequence[str]) -> str:
    lines = [
        "| settings (over the defaults) | scorer | best epoch | validation HR@10 | test HR@10 | test HR@50 "
        "| s/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for scorer in scorers:
        for result in results:
            best = result["best"][scorer]
            lines.append(
                f"| {settings_name(result['overrides'])} | {scorer} | {best['epoch']} "
                f"| {best['validation']:.4f} | {best['test']:.4f} | {best['test_hr50']:.4f} "
                f"| {result['seconds_per_epoch']:.1f} |"
            )
    return "\n".join(lines)


def chosen_per_scorer(results: Sequence[dict], scorers: Sequence[str]) -> list[str]:
    """One line per scorer: the (settings, epoch) best on validation HR@10 (then MRR@10), and its test."""
    lines = []
    for scorer in scorers:
        result = max(
            results, key=lambda r: (r["best"][scorer]["validation"], r["best"][scorer]["validation_mrr"])
        )
        best = result["best"][scorer]
        lines.append(
            f"- {scorer}: {settings_name(result['overrides'])} at epoch {best['epoch']} (validation HR@10 "
            f"{best['validation']:.4f}, test HR@10 {best['test']:.4f}, test HR@50 {best['test_hr50']:.4f})"
        )
    return lines


def cooccurrence_reference(split: ReferenceSplit) -> str:
    """CooccurrenceCandidates' defaults (the session window, CooccurrenceSettings) on the same split."""
    window, settings = SessionSettings().window, CooccurrenceSettings()
    validation, test = evaluate_lists(split, window_pairs(split.sentences, window), settings)
    return (
        f"Co-occurrence on the same split (window {window}, popularity exponent "
        f"{settings.popularity_exponent}): validation HR@10 {validation['hit_rate']['10']:.4f}, "
        f"test HR@10 {test['hit_rate']['10']:.4f}, test HR@50 {test['hit_rate']['50']:.4f}."
    )


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
    parser.add_argument(
        "--scorers",
        default=",".join(SCORERS),
        help=f"comma-separated, of {', '.join(SCORERS)} (default: all)",
    )
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    scorers = [s.strip() for s in args.scorers.split(",") if s.strip()]
    unknown = sorted(set(scorers) - set(SCORERS))
    if unknown or not scorers:
        parser.error(f"--scorers: unknown {unknown}; expected some of {', '.join(SCORERS)}")
    grid = DEFAULT_GRID
    if args.grid:
        with open(args.grid, encoding="utf-8") as f:
            grid = json.load(f)
    ratings, split = default_split(args.ratings)
    print(f"{len(split.sentences)} sessions, {len(split.catalogue)} items, {len(split.validation)} queries")
    reference = cooccurrence_reference(split)
    print(reference, flush=True)
    results = []
    for overrides in grid:
        result = run_config(split, {**json.loads(args.base), **overrides}, args.max_epochs, scorers)
        result["overrides"] = overrides
        results.append(result)
        print(json.dumps(result), flush=True)
    text = "\n".join(
        [
            "### Trainer settings sweep (chosen on validation, test reported)",
            "",
            f"`python -m bench.sweep_trainer --max-epochs {args.max_epochs} --write` on {ratings}, "
            f"{datetime.date.today().isoformat()}, "
            f"{machine_description()}. Each scorer ranks the catalogue for the pipeline's validation queries "
            "(third-to-last -> second-to-last engagement) after each epoch up to "
            f"{args.max_epochs}; the best epoch is chosen on validation (HR@10, then MRR@10). Scorers: "
            "similar = cosine of hidden layers (served today); "
            "next = hidden(query) . softmax row(candidate); next_bias = next + softmax bias(candidate); "
            "next_cosine = next with both sides normalised. "
            "s/epoch: median training seconds per epoch (pair generation included when subsampling).",
            "",
            table(results, scorers),
            "",
            "Best on validation, per scorer:",
            *chosen_per_scorer(results, scorers),
            "",
            reference,
        ]
    )
    return report(text, START, END, args.write)


if __name__ == "__main__":
    sys.exit(main())
