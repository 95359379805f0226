"""Classic item-to-item baselines on the pipeline's split, beside the pipeline's own co-occurrence scoring.

What a recommender engineer tries before an embedding model: ItemKNN (cosine over users' histories), RP3beta
(Paudel et al., 2016: item -> user -> item random walk, divided by popularity^beta), EASE (Steck, 2019: a
closed-form item-item regression) and session co-occurrence at wider windows than the pipeline's. Every
method answers an item's neighbours (query excluded) from the training events of bench/reference_gensim's
split, which is SessionExampleGen's; its setting is chosen on validation and test is reported. The matrices
are dense item x item, so this is for logs of up to MAX_ITEMS items.

    python -m bench.reference_item_item [--ratings FILE] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable, Sequence

import numpy as np

from bench.docs_section import report
from bench.reference_gensim import ReferenceSplit, default_split, machine_description
from bench.sweep_cooccurrence import answer_from_lists, window_pairs
from components.cooccurrence import cooccurrence_lib
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.related_evaluator import metrics_lib

START, END = "<!-- reference-item-item:start -->", "<!-- reference-item-item:end -->"
MAX_ITEMS = 20_000  # a dense float64 item x item matrix is 3.2 GB here

Answer = Callable[[Sequence[str], int], list[list[str]]]


def user_item_matrix(histories: Sequence[Sequence[str]], catalogue: Sequence[str]) -> np.ndarray:
    """[users, items]: 1 where a user engaged with an item in training (only catalogue items count)."""
    column = {item: c for c, item in enumerate(catalogue)}
    x = np.zeros((len(histories), len(catalogue)))
    for row, items in enumerate(histories):
        x[row, [column[i] for i in items if i in column]] = 1.0
    return x


def cosine_similarity(x: np.ndarray) -> np.ndarray:
    """ItemKNN: cosine of item columns; an item is never its own neighbour."""
    norms = np.sqrt((x * x).sum(axis=0))
    similarity = (x.T @ x) / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(similarity, 0.0)
    return similarity


def rp3beta(x: np.ndarray, beta: float) -> np.ndarray:
    """P(item -> user -> candidate) over the bipartite graph, divided by the candidate's degree^beta."""
    item_to_user = x.T / np.maximum(x.sum(axis=0), 1.0)[:, None]
    user_to_item = x / np.maximum(x.sum(axis=1), 1.0)[:, None]
    walk = item_to_user @ user_to_item / np.maximum(x.sum(axis=0), 1.0)[None, :] ** beta
    np.fill_diagonal(walk, 0.0)
    return walk


def ease(x: np.ndarray, l2: float) -> np.ndarray:
    """B = argmin |X - XB|^2 + l2 |B|^2 with diag(B) = 0, in closed form: B = -P / diag(P) with
    P = (X'X + l2 I)^-1. Row q of B scores every candidate for query item q."""
    precision = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def answer_from_scores(scores: np.ndarray, catalogue: Sequence[str]) -> Answer:
    """Each query item's candidates by descending score (ties by catalogue order), the query excluded; items
    outside the catalogue get no answer."""
    row_of = {item: r for r, item in enumerate(catalogue)}

    def answer(items: Sequence[str], k: int) -> list[list[str]]:
        lists = []
        for item in items:
            row = row_of.get(item)
            if row is None:
                lists.append([])
                continue
            ranked = np.argsort(-scores[row], kind="stable")
            lists.append([catalogue[c] for c in ranked[: k + 1] if c != row][:k])
        return lists

    return answer


def cooccurrence_answer(split: ReferenceSplit, window: int, exponent: float) -> Answer:
    """The pipeline's co-occurrence scoring (CooccurrenceCandidates' library) at another window."""
    settings = CooccurrenceSettings(popularity_exponent=exponent)
    lists, _ = cooccurrence_lib.cooccurrence_lists(window_pairs(split.sentences, window), settings)
    return answer_from_lists(lists)


def methods(split: ReferenceSplit) -> list[tuple[str, list[tuple[str, Callable[[], Answer]]]]]:
    """(method, [(setting, build its answer)]): the grids every method's setting is chosen from."""
    catalogue = split.catalogue
    x = user_item_matrix(split.histories, catalogue)
    scored = lambda f: lambda: answer_from_scores(f(), catalogue)  # noqa: E731
    popularity = np.array([split.popularity.get(item, 0) for item in catalogue], dtype=float)
    return [
        ("popularity", [("-", scored(lambda: np.tile(popularity, (len(catalogue), 1))))]),
        ("ItemKNN (cosine over users)", [("-", scored(lambda: cosine_similarity(x)))]),
        ("RP3beta", [(f"beta {b}", scored(lambda b=b: rp3beta(x, b))) for b in (0.0, 0.25, 0.5, 0.75)]),
        ("EASE", [(f"l2 {l2:g}", scored(lambda l2=l2: ease(x, l2))) for l2 in (5e2, 2e3, 5e3, 2e4)]),
        (
            "co-occurrence, the pipeline's scoring",
            [
                (f"window {w}, exponent {e}", lambda w=w, e=e: cooccurrence_answer(split, w, e))
                for w in (5, 10, 20)
                for e in (0.25, 0.5)
            ],
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", default="work/data/ml-100k/ratings.tsv")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    ratings, split = default_split(args.ratings)
    if len(split.catalogue) > MAX_ITEMS:
        raise SystemExit(
            f"{ratings}: {len(split.catalogue)} items; these dense baselines stop at {MAX_ITEMS}"
        )
    buckets = metrics_lib.popularity_buckets(split.popularity)
    rows = [
        "| method | setting chosen on validation | validation HR@10 | test HR@10 | test HR@20 | test HR@50 "
        "| test MRR@10 | test head / torso / tail HR@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, grid in methods(split):
        best = None
        for setting, build in grid:
            answer = build()
            validation, test = (
                metrics_lib.evaluate_source(queries, answer, buckets, len(split.catalogue))
                for queries in (split.validation, split.test)
            )
            key = (validation["hit_rate"]["10"], validation["mrr"]["10"])
            print(f"{method}, {setting}: validation HR@10 {key[0]:.4f}", flush=True)
            if best is None or key > best[0]:
                best = (key, setting, test)
        (validation_hr, _), setting, test = best
        by_bucket = " / ".join(f"{test['buckets'][b]['hit_rate']['10']:.3f}" for b in metrics_lib.BUCKETS)
        rows.append(
            f"| {method} | {setting} | {validation_hr:.4f} | {test['hit_rate']['10']:.4f} "
            f"| {test['hit_rate']['20']:.4f} | {test['hit_rate']['50']:.4f} | {test['mrr']['10']:.4f} "
            f"| {by_bucket} |"
        )
    text = "\n".join(
        [
            "### Classic item-to-item baselines (chosen on validation, test reported)",
            "",
            f"`python -m bench.reference_item_item --write` on {ratings}, "
            f"{datetime.date.today().isoformat()}, {machine_description()}. "
            f"The pipeline's split ({len(split.catalogue)} items, "
            f"{len(split.test)} test queries); every method sees the same training events and answers an "
            "item's neighbours, query excluded. The pipeline's own default is co-occurrence at window 5, "
            "exponent 0.25; its sessions' window is shared with the trainer.",
            "",
            *rows,
        ]
    )
    return report(text, START, END, args.write)


if __name__ == "__main__":
    sys.exit(main())
