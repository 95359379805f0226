"""Sweeps how board co-occurrence weights large boards and popular candidates, on a run's validation queries
(test reported, never chosen on): the defaults of `BoardSettings`.

    python -m bench.sweep_boards --world work/data/boards --run-dir work/runs/boards [--write]

The world is `pin2vec data synthetic --boards` (its collections are read whole: test-sized data), the run a
`pin2vec run` over its events (`make bench-boards`), whose held-out splits and engagement buckets are used.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import os
import sys
from collections.abc import Sequence

from bench.docs_section import report
from bench.reference_gensim import machine_description
from components.board_cooccurrence import board_lib
from components.related_evaluator import metrics_lib
from components.related_evaluator.metrics_lib import Query
from engagement_data.synthetic_boards import COLLECTIONS_SUBDIR
from engagement_data.synthetic_boards_measure import read_shards
from formats import candidate_table
from serving.related_sources import latest_version

START, END = "<!-- sweep-boards:start -->", "<!-- sweep-boards:end -->"
GRID = [(size, popularity) for size in (0.0, 0.5, 1.0) for popularity in (0.0, 0.25, 0.5)]


def read_boards(world: str) -> dict[str, list[tuple[str, int]]]:
    """board -> its (item, time) saves, from the world's collection shards."""
    columns = read_shards(os.path.join(world, COLLECTIONS_SUBDIR))
    boards: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for board, item, timestamp in zip(
        columns["board_id"], columns["item_id"], columns["timestamp"], strict=True
    ):
        boards[str(board)].append((str(item), int(timestamp)))
    return boards


def run_queries(run_dir: str) -> dict[str, list[Query]]:
    """The run's validation and test queries, read with the RelatedEvaluator's own reader."""
    from tfx.types import standard_artifacts

    from components.related_evaluator import executor

    examples = standard_artifacts.Examples()
    examples.uri = max(
        glob.glob(os.path.join(run_dir, "pipeline/SessionExampleGen/examples/*")),
        key=lambda path: int(os.path.basename(path)),
    )
    examples.split_names = '["train", "eval", "test", "rerank"]'
    return {
        name: [
            Query(item, target)
            for items, targets in executor.split_batches(examples, split, with_timestamp=False)
            for item, target in zip(items, targets, strict=True)
        ]
        for name, split in executor.SPLITS.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="work/data/boards")
    parser.add_argument("--run-dir", default="work/runs/boards")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    boards, splits = read_boards(args.world), run_queries(args.run_dir)
    table = candidate_table.load_table(latest_version(os.path.join(args.run_dir, "serving"), "cooccurrence"))
    buckets = metrics_lib.popularity_buckets(dict(zip(table.items, table.popularity.tolist(), strict=True)))
    catalogue = len({item for saves in boards.values() for item, _ in saves})
    lines = [
        "| board_size_exponent | popularity_exponent | validation HR@10 | test HR@10 "
        "| test head / torso / tail |",
        "|---|---|---|---|---|",
    ]
    results = []
    for size, popularity in GRID:
        settings = board_lib.BoardSettings(board_size_exponent=size, popularity_exponent=popularity)
        lists = board_lib.board_lists(boards, settings)

        def answer(items: Sequence[str], k: int, lists=lists) -> list[list[str]]:
            return [[c for c, _ in lists.get(item, [])][:k] for item in items]

        scores = {
            name: metrics_lib.evaluate_source(queries, answer, buckets, catalogue)
            for name, queries in splits.items()
        }
        results.append((scores["validation"]["hit_rate"]["10"], size, popularity))
        test = scores["test"]
        by_bucket = " / ".join(f"{test['buckets'][b]['hit_rate']['10']:.3f}" for b in metrics_lib.BUCKETS)
        lines.append(
            f"| {size} | {popularity} | {scores['validation']['hit_rate']['10']:.4f} "
            f"| {test['hit_rate']['10']:.4f} | {by_bucket} |"
        )
        print(lines[-1], flush=True)
    _, size, popularity = max(results, key=lambda r: (round(r[0], 9), r[1], -r[2]))
    text = "\n".join(
        [
            "### Board co-occurrence weighting (chosen on validation, test reported)",
            "",
            f"`python -m bench.sweep_boards --world {args.world} --run-dir {args.run_dir} --write`, "
            f"{datetime.date.today().isoformat()}, {machine_description()}. The planted world's boards, "
            f"scored on the run's held-out engagements ({len(splits['validation'])} validation and "
            f"{len(splits['test'])} test queries).",
            "",
            *lines,
            "",
            f"Best on validation: board_size_exponent {size}, popularity_exponent {popularity}.",
        ]
    )
    return report(text, START, END, args.write)


if __name__ == "__main__":
    sys.exit(main())
