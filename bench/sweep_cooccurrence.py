"""Chooses the co-occurrence association (popularity exponent) and window on validation queries only.

Uses the pipeline's own code: the split of bench/reference_gensim.build_split (rare-item filter,
leave-last-out, sessions), the window pairs of sessions_lib and the scoring of cooccurrence_lib, so the
figures are the ones CooccurrenceCandidates would produce (ties broken by id, as there).

    python -m bench.sweep_cooccurrence [--ratings FILE] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Mapping, Sequence

from bench.docs_section import report
from bench.reference_gensim import ReferenceSplit, default_split, machine_description
from components.cooccurrence import cooccurrence_lib
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.related_evaluator import metrics_lib
from components.session_example_gen import sessions_lib

START, END = "<!-- sweep-cooccurrence:start -->", "<!-- sweep-cooccurrence:end -->"
EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)
WINDOWS = (3, 5, 8)


def window_pairs(sentences: Sequence[Sequence[str]], window: int) -> list[tuple[str, str]]:
    pairs = []
    for sentence in sentences:
        session = tuple((item, 0) for item in sentence)
        pairs += [(p.item, p.label) for p in sessions_lib.session_pairs(session, window)]
    return pairs


def answer_from_lists(lists: Mapping[str, Sequence[tuple[str, float]]]):
    """`answer(query_items, k)` for metrics_lib.evaluate_source over co-occurrence lists (unknown: [])."""
    return lambda items, k: [[c for c, _ in (lists.get(i) or [])[:k]] for i in items]


def evaluate_lists(
    split: ReferenceSplit, pairs: Sequence[tuple[str, str]], settings: CooccurrenceSettings
) -> tuple[dict, dict]:
    """(validation, test) metrics_lib figures of CooccurrenceCandidates' lists built from `pairs`."""
    lists, degrees = cooccurrence_lib.cooccurrence_lists(pairs, settings)
    answer = answer_from_lists(lists)
    buckets = metrics_lib.popularity_buckets(degrees)
    validation, test = (
        metrics_lib.evaluate_source(queries, answer, buckets, len(degrees))
        for queries in (split.validation, split.test)
    )
    return validation, test


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", default="work/data/ml-100k/ratings.tsv")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    ratings, split = default_split(args.ratings)
    rows = [
        "| window | popularity exponent | validation HR@10 | validation MRR@10 | test HR@10 |",
        "|---|---|---|---|---|",
    ]
    best = None
    for window in WINDOWS:
        pairs = window_pairs(split.sentences, window)
        for exponent in EXPONENTS:
            validation, test = evaluate_lists(
                split, pairs, CooccurrenceSettings(popularity_exponent=exponent)
            )
            key = (validation["hit_rate"]["10"], validation["mrr"]["10"])
            if best is None or key > best[0]:
                best = (key, window, exponent, test["hit_rate"]["10"])
            rows.append(
                f"| {window} | {exponent} | {validation['hit_rate']['10']:.4f} "
                f"| {validation['mrr']['10']:.4f} "
                f"| {test['hit_rate']['10']:.4f} |"
            )
            print(rows[-1], flush=True)
    _, window, exponent, test_hr = best
    text = "\n".join(
        [
            "### Co-occurrence association sweep (chosen on validation, test reported)",
            "",
            f"`python -m bench.sweep_cooccurrence --write` on {ratings}, "
            f"{datetime.date.today().isoformat()}, {machine_description()}. "
            "Score = count / degree(candidate)^exponent, top 100 per item, ties by id.",
            "",
            *rows,
            "",
            f"Best on validation: window {window}, exponent {exponent} (test HR@10 {test_hr:.4f}).",
        ]
    )
    return report(text, START, END, args.write)


if __name__ == "__main__":
    sys.exit(main())
