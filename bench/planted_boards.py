"""The Pin2Vec post's board experiment, reproduced on planted data: every source of one pipeline run, scored
on held-out engagements (the RelatedEvaluator's HR@10, paired against pin2vec) and against the planted truth
(precision@10: the share of an item's top 10 in its own fine topic), overall and by engagement popularity.

The world comes from `pin2vec data synthetic --boards` (engagement_data/synthetic_boards.py): boards are
segmented, coarse and drift; tail items are rarely engaged but still saved. The run is `pin2vec run` over its
events with `--collections` over its boards. Nothing here is fitted: both inputs go through the product.

    python -m bench.planted_boards --world work/data/boards --run-dir work/runs/boards [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from bench.docs_section import report
from bench.reference_gensim import machine_description
from components.related_evaluator import metrics_lib
from engagement_data.synthetic import read_ground_truth
from formats import candidate_table, evaluation_result
from formats.index_searcher import latest_version_dir
from serving.related_sources import latest_version, open_source

START, END = "<!-- planted-boards:start -->", "<!-- planted-boards:end -->"
K = 10


def planted_precision(
    answers: Sequence[Sequence[str] | None], truths: Sequence[set[str]], k: int = K
) -> np.ndarray:
    """Per item: the share of its top k answers that are planted related items (no answer counts 0)."""
    return np.array(
        [len(set((answer or [])[:k]) & truth) / k for answer, truth in zip(answers, truths, strict=True)]
    )


def source_answers(serving_dir: str, source: str, items: Sequence[str], k: int = K) -> list[list[str] | None]:
    """The pushed source's top k for every item, as `pin2vec related --source` answers it."""
    answerer, _ = open_source(serving_dir, source, max_k=max(k, 100))
    related = answerer.related(list(items), k)
    return [None if related[item] is None else [other for other, _ in related[item]] for item in items]


def precision_table(
    precision: Mapping[str, np.ndarray],
    buckets: np.ndarray,
    answered: Mapping[str, np.ndarray] | None = None,
    reference: str = "pin2vec",
) -> list[str]:
    """Markdown rows: each source's mean precision@10 overall and by bucket, the share of items it answers
    at all (per bucket, when `answered` is given), and its paired difference from `reference` (95% interval;
    bold where it excludes 0)."""
    rows = []
    for source, values in precision.items():
        cells = [f"{values.mean():.3f}"] + [
            f"{values[buckets == b].mean():.3f}" for b in range(len(metrics_lib.BUCKETS))
        ]
        if source == reference:
            diffs = ["reference"] * (1 + len(metrics_lib.BUCKETS))
        else:
            diffs = [
                _interval(metrics_lib.paired_mean_difference(precision[reference][mask], values[mask]))
                for mask in [np.ones(len(values), bool)]
                + [buckets == b for b in range(len(metrics_lib.BUCKETS))]
            ]
        shares = ""
        if answered is not None:
            masks = [buckets == b for b in range(len(metrics_lib.BUCKETS))]
            shares = " / ".join(f"{answered[source][mask].mean():.2f}" for mask in masks) + " | "
        rows.append(f"| {source} | {cells[0]} | {' / '.join(cells[1:])} | {shares}{' / '.join(diffs)} |")
    return rows


def _interval(result: Mapping[str, float]) -> str:
    text = f"{result['difference']:+.3f} [{result['low']:+.3f}, {result['high']:+.3f}]"
    return f"**{text}**" if result["low"] > 0 or result["high"] < 0 else text


def hit_rate_rows(evaluation: Mapping) -> list[str]:
    """Markdown rows: test HR@10 per source overall and by bucket, and pin2vec's paired lead over it."""
    test = evaluation["splits"]["test"]
    against = evaluation.get("comparisons_to_pin2vec", {}).get("splits", {}).get("test", {})
    rows = []
    for source in evaluation["sources"]:
        metrics = test[source]
        buckets = " / ".join(f"{metrics['buckets'][b]['hit_rate']['10']:.3f}" for b in metrics_lib.BUCKETS)
        if source == "pin2vec":
            lead = "reference"
        else:  # stored as source minus pin2vec: flipped so that every cell reads "pin2vec minus source"
            compared = against[source]
            flip = lambda r: {"difference": -r["difference"], "low": -r["high"], "high": -r["low"]}  # noqa: E731
            lead = " / ".join(
                _interval(flip(part))
                for part in [compared] + [compared["buckets"][b] for b in metrics_lib.BUCKETS]
            )
        rows.append(f"| {source} | {metrics['hit_rate']['10']:.3f} | {buckets} | {lead} |")
    return rows


def measure(world: str, run_dir: str) -> str:
    serving = os.path.join(run_dir, "serving")
    version = latest_version_dir(os.path.join(serving, "evaluation"), evaluation_result.EVALUATION_FILE)
    if version is None:
        raise FileNotFoundError(f"no pushed evaluation under {serving}: run the pipeline first (see --help)")
    evaluation = evaluation_result.read_evaluation(version).raw
    truth = read_ground_truth(os.path.join(world, "ground_truth.tsv"))
    items = sorted(truth)
    cooccurrence = candidate_table.load_table(latest_version(serving, "cooccurrence"))
    engaged = dict(zip(cooccurrence.items, cooccurrence.popularity.tolist(), strict=True))
    buckets = metrics_lib.item_buckets(np.array([engaged.get(item, 0) for item in items]))
    truths = [set(truth[item]) for item in items]
    sources = list(evaluation["sources"])
    answers = {s: source_answers(serving, s, items) for s in sources}
    precision = {s: planted_precision(answers[s], truths) for s in sources}
    answered = {s: np.array([bool(a) for a in answers[s]]) for s in sources}
    sizes = " / ".join(str(int((buckets == b).sum())) for b in range(len(metrics_lib.BUCKETS)))
    queries = evaluation["splits"]["test"]["pin2vec"]["queries"]
    lines = [
        "## planted-boards: the post's board experiment on planted data",
        "",
        f"`python -m bench.planted_boards --world {world} --run-dir {run_dir} --write`, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine_description()}. "
        f"The run: `make bench-boards` (`pin2vec run` with default settings over the world's events and "
        f"`--collections` over its boards). Head / torso / tail as the RelatedEvaluator buckets them (items "
        f"making up the first, second and last third of engagements).",
        "",
        f"Held-out engagements ({queries} test queries; the RelatedEvaluator's figures; paired differences "
        "are pin2vec minus the source, 95% interval, bold where it excludes 0):",
        "",
        "| source | test HR@10 | head / torso / tail | pin2vec minus source: all / head / torso / tail |",
        "|---|---|---|---|",
        *hit_rate_rows(evaluation),
        "",
        f"Planted truth ({len(items)} items: {sizes} head / torso / tail; precision@10 = share of the top 10 "
        "in the item's fine topic, at most 0.9; an item a source cannot answer scores 0):",
        "",
        "| source | precision@10 | head / torso / tail | items answered: head / torso / tail "
        "| pin2vec minus source: all / head / torso / tail |",
        "|---|---|---|---|---|",
        *precision_table(precision, buckets, answered),
        "",
        f"Best source by validation: {evaluation['best_source']}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="work/data/boards", help="pin2vec data synthetic --boards --out")
    parser.add_argument("--run-dir", default="work/runs/boards", help="the pin2vec run's --output-dir")
    parser.add_argument("--write", action="store_true", help="write the tables into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    text = measure(args.world, args.run_dir)
    return report(text, START, END, args.write)


if __name__ == "__main__":
    sys.exit(main())
