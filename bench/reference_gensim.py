"""`make bench-reference`: gensim Word2Vec beside this project's sources, on the pipeline's own split.

The split is built by the pipeline's own pure functions (event_rows.read_events parses the rows, then
sessions_lib.split_log: filter_rare_items -> hold_out_last per user -> sessionize), so gensim trains on
exactly what the pipeline trains on and is asked exactly the validation and test queries the RelatedEvaluator
asks. gensim's neighbours (cosine, query
excluded) are scored by the same `metrics_lib.evaluate_source`; popularity buckets come from item counts in
the training events. This project's figures are read from the newest RelatedEvaluator `evaluation.json` of a
pipeline run (`make demo` makes one), so both sides come from one protocol.

    .venv/bin/python -m bench.reference_gensim [--run-dir work/runs/ml-100k] [--write]

gensim is an optional dev dependency (locked in requirements/requirements.lock); the pipeline never imports
it. One module (about 400 lines): the split, gensim's training and its report are this benchmark's steps,
read top to bottom; the split's reading and hold-out are the package's (event_rows, sessions_lib).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import json
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components.related_evaluator import metrics_lib
from components.related_evaluator.metrics_lib import Query
from components.session_example_gen import sessions_lib
from components.session_example_gen.event_rows import Event, read_events
from components.session_example_gen.session_settings import EventSource, SessionSettings

DEFAULT_RATINGS = "work/data/ml-100k/ratings.tsv"
DEFAULT_RUN_DIR = "work/runs/ml-100k"
BENCHMARKS_FILE = "docs/BENCHMARKS.md"
START_MARKER = "<!-- reference-gensim:start -->"
END_MARKER = "<!-- reference-gensim:end -->"
SPLITS = ("validation", "test")
KS = metrics_lib.DEFAULT_KS
COMMAND = "make bench-reference"  # = .venv/bin/python -m bench.reference_gensim --write


# ---------------------------------------------------------------------------------------------------------
# The split: the pipeline's functions, in the pipeline's order.


@dataclass(frozen=True)
class ReferenceSplit:
    sentences: list[list[str]]  # training sessions, item ids in engagement order (gensim's corpus)
    validation: list[Query]  # (third-to-last -> second-to-last) per held-out user
    test: list[Query]  # (second-to-last -> last) per held-out user
    popularity: dict[str, int]  # engagements per item in the training events (not the held-out ones)
    histories: list[list[str]] = field(default_factory=list)  # each user's training items, in order

    @property
    def catalogue(self) -> list[str]:
        """Every item of a training session (the pipeline's vocabulary): what a source could recommend."""
        return sorted({item for sentence in self.sentences for item in sentence})


def build_split(events: Iterable[Event], settings: SessionSettings) -> ReferenceSplit:
    """The SessionExampleGen split (see sessions_lib.events_to_pairs), kept as sessions instead of pairs."""
    sentences: list[list[str]] = []
    validation: list[Query] = []
    test: list[Query] = []
    histories: list[list[str]] = []
    popularity: Counter = Counter()
    for examples in sessions_lib.split_log(events, settings, settings.session_gap_seconds).users.values():
        history = examples.history
        if history.test is not None:
            validation.append(Query(history.eval.item, history.eval.label))
            test.append(Query(history.test.item, history.test.label))
        popularity.update(event.item for event in history.train)
        histories.append([event.item for event in history.train])
        sentences.extend([item for item, _ in session] for session in examples.sessions.sessions)
    return ReferenceSplit(sentences, validation, test, dict(popularity), histories)


# ---------------------------------------------------------------------------------------------------------
# gensim: training and answering.


@dataclass(frozen=True)
class GensimSetting:
    """One gensim Word2Vec configuration (skip-gram, negative sampling); the rest are gensim's defaults."""

    name: str
    window: int = 5
    epochs: int = 5
    vector_size: int = 128
    negative: int = 64
    workers: int = 2
    seed: int = 1


# The Pin2Vec post's settings, and the best gensim setting measured in /work/shared/docs/DATA.md.
SETTINGS = (
    GensimSetting("gensim w5 e5 (post's settings)"),
    GensimSetting("gensim w20 e20 (best in DATA.md)", window=20, epochs=20),
)


@dataclass(frozen=True)
class TrainingStats:
    seconds: float  # Word2Vec.train only (not vocabulary building)
    effective_words: int  # words trained after gensim's frequent-word downsampling
    words_per_second: float  # median of gensim's per-epoch "effective words/s" log lines


_RATE = re.compile(r"([0-9][0-9,]*) effective words/s")


class _EpochRates(logging.Handler):
    """Collects the "... N effective words/s" figure of each gensim epoch log line."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.rates: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _RATE.search(record.getMessage())
        if match:
            self.rates.append(float(match.group(1).replace(",", "")))


def train_gensim(sentences: Sequence[Sequence[str]], setting: GensimSetting) -> tuple[Any, TrainingStats]:
    """(KeyedVectors, TrainingStats): skip-gram with negative sampling over the training sessions."""
    from gensim.models import Word2Vec

    model = Word2Vec(
        sg=1,
        vector_size=setting.vector_size,
        window=setting.window,
        negative=setting.negative,
        min_count=1,
        workers=setting.workers,
        seed=setting.seed,
    )
    model.build_vocab(sentences)
    handler = _EpochRates()
    logger = logging.getLogger("gensim.models.word2vec")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        started = time.perf_counter()
        effective, _ = model.train(sentences, total_examples=model.corpus_count, epochs=setting.epochs)
        seconds = time.perf_counter() - started
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    rate = statistics.median(handler.rates) if handler.rates else effective / max(seconds, 1e-9)
    return model.wv, TrainingStats(seconds, int(effective), rate)


def nearest_neighbours_answer(keyed_vectors) -> Callable[[Sequence[str], int], list[list[str]]]:
    """`answer(items, k)` for metrics_lib: each item's k most cosine-similar others (itself excluded);
    [] for an item the vectors do not know."""
    unit = np.asarray(keyed_vectors.get_normed_vectors(), dtype=np.float32)
    ids = list(keyed_vectors.index_to_key)
    rows = {item: row for row, item in enumerate(ids)}

    def answer(items: Sequence[str], k: int) -> list[list[str]]:
        known = [rows[item] for item in items if item in rows]
        lists: dict[int, list[str]] = {}
        if known:
            scores = unit[known] @ unit.T
            scores[np.arange(len(known)), known] = -np.inf  # the query is never its own neighbour
            depth = min(k, len(ids) - 1)
            for row, row_scores in zip(known, scores, strict=True):
                top = np.argpartition(-row_scores, depth - 1)[:depth] if depth > 0 else np.array([], int)
                top = top[np.argsort(-row_scores[top], kind="stable")]
                lists[row] = [ids[i] for i in top]
        return [lists.get(rows[item], []) if item in rows else [] for item in items]

    return answer


def evaluate_keyed_vectors(keyed_vectors, split: ReferenceSplit, ks: Sequence[int] = KS) -> dict[str, dict]:
    """split name -> metrics_lib.evaluate_source metrics of gensim's neighbours."""
    answer = nearest_neighbours_answer(keyed_vectors)
    buckets = metrics_lib.popularity_buckets(split.popularity)
    catalogue = len(split.catalogue)
    return {
        name: metrics_lib.evaluate_source(getattr(split, name), answer, buckets, catalogue, ks)
        for name in SPLITS
    }


# ---------------------------------------------------------------------------------------------------------
# This project's figures, the table and docs/BENCHMARKS.md.


def find_latest_evaluation(run_dir: str) -> str | None:
    """The newest RelatedEvaluator evaluation.json under the run's pipeline root, if any."""
    patterns = [
        os.path.join(run_dir, root, "**", "RelatedEvaluator", "evaluation", "*", "evaluation.json")
        for root in ("pipeline", "pipeline_root")
    ]
    found = {path for pattern in patterns for path in glob.glob(pattern, recursive=True)}
    return max(found, key=os.path.getmtime) if found else None


@dataclass(frozen=True)
class Row:
    source: str
    split: str
    hit_rate: dict[str, float]  # str(K) -> HR@K
    mrr_at_10: float
    coverage_at_10: float
    queries: int


def rows_from_metrics(source: str, by_split: Mapping[str, Mapping]) -> list[Row]:
    return [
        Row(
            source,
            split,
            {str(k): float(by_split[split]["hit_rate"][str(k)]) for k in KS},
            float(by_split[split]["mrr"]["10"]),
            float(by_split[split]["coverage"]["10"]),
            int(by_split[split]["queries"]),
        )
        for split in SPLITS
        if split in by_split
    ]


def rows_from_evaluation(evaluation: Mapping) -> list[Row]:
    """One row per (source, split) of a RelatedEvaluator evaluation.json, sources named as in the run."""
    by_source: dict[str, dict] = {}
    for split in SPLITS:
        for source, metrics in evaluation["splits"].get(split, {}).items():
            by_source.setdefault(source, {})[split] = metrics
    best = evaluation.get("best_source")
    return [
        row
        for source in evaluation.get("sources", list(by_source))
        for row in rows_from_metrics(
            f"pin2vec run: {source}" + (" (best on validation)" if source == best else ""), by_source[source]
        )
    ]


def markdown_table(rows: Sequence[Row]) -> str:
    header = "| source | split | queries | HR@10 | HR@20 | HR@50 | MRR@10 | coverage@10 |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for split in SPLITS:
        for row in (r for r in rows if r.split == split):
            hits = " | ".join(f"{row.hit_rate[str(k)]:.3f}" for k in KS)
            lines.append(
                f"| {row.source} | {row.split} | {row.queries} | {hits} | {row.mrr_at_10:.3f} | "
                f"{row.coverage_at_10:.3f} |"
            )
    return "\n".join(lines)


def machine_description() -> str:
    import psutil

    try:
        import gensim

        gensim_version = gensim.__version__
    except ImportError:
        gensim_version = "not installed"
    ram = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({platform.machine()}), {ram:.0f} GiB RAM, "
        f"Python {platform.python_version()}, gensim {gensim_version}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows gensim's words/s, not its metrics)"
    )


def replace_section(document: str, section: str) -> str:
    """`document` with the text between the reference-gensim markers replaced (markers + section appended
    when absent); everything outside the markers is left byte for byte."""
    block = f"{START_MARKER}\n{section.strip()}\n{END_MARKER}"
    start, end = document.find(START_MARKER), document.find(END_MARKER)
    if start == -1 and end == -1:
        return document.rstrip("\n") + "\n\n" + block + "\n"
    if start == -1 or end < start:
        raise ValueError(
            f"{BENCHMARKS_FILE}: found only one of {START_MARKER} / {END_MARKER} or them out of order; fix "
            "the markers by hand"
        )
    return document[:start] + block + document[end + len(END_MARKER) :]


# ---------------------------------------------------------------------------------------------------------
# The command.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ratings", default=DEFAULT_RATINGS, help="MovieLens-100K ratings.tsv (fetched here when absent)"
    )
    parser.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="a pipeline run's --output-dir")
    parser.add_argument(
        "--write", action="store_true", help=f"replace this bench's section of {BENCHMARKS_FILE}"
    )
    parser.add_argument("--benchmarks", default=BENCHMARKS_FILE, help=argparse.SUPPRESS)
    parser.add_argument(
        "--settings",
        default="all",
        choices=["all", "post"],
        help="all: both gensim settings; post: only the post's (window 5, 5 epochs), for a quick look",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


def ensure_ratings(path: str) -> str:
    """`path` itself when it names a log (file, directory or glob); MovieLens-100K is fetched only for the
    default path, so a mistyped --ratings fails instead of silently measuring MovieLens."""
    if os.path.isfile(path) or os.path.isdir(path) or glob.glob(path):
        return path
    if os.path.normpath(path) != os.path.normpath(DEFAULT_RATINGS):
        raise SystemExit(f"--ratings {path}: no such file, directory or glob (expected a user/item/time log)")
    from engagement_data.movielens_fetch import fetch_movielens_100k

    return str(fetch_movielens_100k(os.path.dirname(path) or ".").ratings)


def default_split(path: str) -> tuple[str, ReferenceSplit]:
    """The ratings file (fetched when missing) and SessionExampleGen's split of it with default settings: what
    every ML-100K sweep chooses on."""
    ratings = ensure_ratings(path)
    return ratings, build_split(read_events(ratings, EventSource(path=ratings)), SessionSettings())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    source = EventSource(path=ensure_ratings(args.ratings))  # user_id, item_id, timestamp: the pipeline's
    settings = SessionSettings()  # min_count 5, gap 1800 s, every user's last two engagements held out
    split = build_split(read_events(source.path, source), settings)
    print(
        f"split: {sum(map(len, split.sentences)):,} training events in {len(split.sentences):,} sessions, "
        f"{len(split.catalogue):,} items, {len(split.validation)} validation / {len(split.test)} test "
        "queries",
        file=sys.stderr,
    )
    rows: list[Row] = []
    notes: list[str] = []
    chosen = SETTINGS if args.settings == "all" else SETTINGS[:1]
    for setting in chosen:
        setting = dataclasses.replace(setting, seed=args.seed, workers=args.workers)
        keyed_vectors, stats = train_gensim(split.sentences, setting)
        rows += rows_from_metrics(setting.name, evaluate_keyed_vectors(keyed_vectors, split))
        notes.append(
            f"{setting.name}: window {setting.window}, {setting.epochs} epochs, "
            f"{setting.negative} negatives, dim {setting.vector_size}, {setting.workers} workers: "
            f"trained in {stats.seconds:.1f} s, "
            f"{stats.words_per_second:,.0f} effective words/s (median over epochs, gensim's log)"
        )
        print(notes[-1], file=sys.stderr)
    evaluation_path = find_latest_evaluation(args.run_dir)
    if evaluation_path is None:
        notes.append(
            f"no RelatedEvaluator evaluation.json under {args.run_dir}: run `make demo` (or `pin2vec run "
            f"--output-dir {args.run_dir} ...`) to add this project's rows"
        )
    else:
        with open(evaluation_path, encoding="utf-8") as f:
            rows += rows_from_evaluation(json.load(f))
        notes.append(f"this project's rows: {evaluation_path}")
    table = markdown_table(rows)
    print(table)
    print("\n".join(notes))
    if args.write:
        section = "\n".join(
            [
                "## Reference: gensim Word2Vec vs this project's sources (MovieLens-100K, same split)",
                "",
                f"Command: `{COMMAND}` (`.venv/bin/python -m bench.reference_gensim --write`). "
                f"Machine: {machine_description()}. "
                f"Measured {started:%Y-%m-%d %H:%M} UTC.",
                "",
                f"Split (sessions_lib, the pipeline's own functions): {len(split.catalogue):,} items in the "
                f"training sessions (min_count={settings.min_count}); each user's last engagement is the "
                "test target (query: the one before), the second-to-last the validation target; "
                f"{len(split.test)} queries per split. "
                "gensim answers with cosine neighbours (query excluded); popularity buckets from item counts "
                "in the training events. gensim with 2 workers is not bit-reproducible run to run.",
                "",
                table,
                "",
                *(f"- {note}" for note in notes),
            ]
        )
        with open(args.benchmarks, encoding="utf-8") as f:
            document = f.read()
        with open(args.benchmarks, "w", encoding="utf-8") as f:
            f.write(replace_section(document, section))
        print(f"wrote the reference-gensim section of {args.benchmarks}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
