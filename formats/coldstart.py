"""Cold start: which source answers an item, in which order, and the share of engaged items answered.

`related` answers each item from the default source. An item it lacks (engaged under `min_count` times, first
engaged today, or cut from the model's vocabulary) is answered by the first of FALLBACK_ORDER that has a list
for it: session co-occurrence (`cooccurrence`, the run's table over the training sessions), board
co-occurrence (`board`), then `coldstart`, session co-occurrence over every event of the window before any
item is dropped, which holds a row for every item engaged in the window. An item engaged with no other item
has an empty `coldstart` row and gets the window's most engaged items, `popular`: a fallback, not a
relation. An item in none of them was not engaged in the window: it is genuinely unknown.

Serving (what it answers) and the RelatedEvaluator (the coverage it reports) both read this module, so the
figure in evaluation.json is the order serving follows. No TFX, no TensorFlow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping, Sequence

import numpy as np

from formats.candidate_table import CandidateTable

COLDSTART_SOURCE = "coldstart"
POPULAR_SOURCE = "popular"  # the window's most engaged items: the last resort, said as such
FALLBACK_ORDER = ("cooccurrence", "board", COLDSTART_SOURCE)


def fallback_chain(default_source: str) -> tuple[str, ...]:
    """The sources tried for an item, in order: the default, then FALLBACK_ORDER (each once)."""
    return (default_source, *(source for source in FALLBACK_ORDER if source != default_source))


def answerable_items(table: CandidateTable) -> frozenset[str]:
    """The items a candidate table has at least one candidate for (a row may be empty padding)."""
    if table.top_n == 0:
        return frozenset()
    return frozenset(table.items[row] for row in np.flatnonzero(table.neighbours[:, 0] >= 0))


def answering_source(
    item: str, chain: Sequence[str], answerable: Mapping[str, Container[str]], engaged: Container[str]
) -> str | None:
    """The first source of `chain` that answers `item`; POPULAR_SOURCE for an item engaged in the window
    that none answers; None for an item not engaged in the window (unknown)."""
    for source in chain:
        known = answerable.get(source)
        if known is not None and item in known:
            return source
    return POPULAR_SOURCE if item in engaged else None


def coverage(
    engaged: Sequence[str], chain: Sequence[str], answerable: Mapping[str, Container[str]]
) -> dict[str, object]:
    """The share of the items engaged in the window that get an answer, overall and by the source that gives
    it (shares of all engaged items, so they add up to `answered`), following `chain` then POPULAR_SOURCE.
    `answered` is None when nothing was engaged."""
    engaged_set = frozenset(engaged)
    by_source = Counter(answering_source(item, chain, answerable, engaged_set) for item in engaged_set)
    n = len(engaged_set)
    order = [*chain, POPULAR_SOURCE]
    return {
        "engaged_items": n,
        "answered": (n - by_source[None]) / n if n else None,
        "unanswered_items": by_source[None],
        "by_source": {source: by_source[source] / n for source in order if n and by_source[source]},
        "order": order,
    }


class ColdStartAnswers:
    """The `coldstart` table answering every item it holds: its co-occurring items, or, for an item engaged
    with nothing else, the window's most engaged items (scored by their engagement count)."""

    def __init__(self, table: CandidateTable):
        self.table = table
        rows = np.arange(len(table.items))
        # Most engaged first, ties by id (rows follow the sorted ids); one extra, as the query is left out.
        self._popular = np.lexsort((rows, -table.popularity))[: table.top_n + 1]

    def source_of(self, item: str) -> str | None:
        row = self.table.row(item)
        if row is None:
            return None
        return COLDSTART_SOURCE if self.table.top_n and self.table.neighbours[row, 0] >= 0 else POPULAR_SOURCE

    def candidates(self, item: str, k: int) -> list[tuple[str, float]] | None:
        """Up to k (item, score) pairs, best first; None for an item not engaged in the window."""
        source = self.source_of(item)
        if source != POPULAR_SOURCE:
            return self.table.candidates(item, k)
        own = self.table.row(item)
        return [
            (self.table.items[row], float(self.table.popularity[row])) for row in self._popular if row != own
        ][:k]

    def related(self, item_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, float]] | None]:
        return {item: self.candidates(item, k) for item in item_ids}


def describe_coverage(figure: Mapping[str, object] | None) -> str:
    """One line for the run summary and report, e.g. `Items engaged in the window answered: 100.0% of 412
    (pin2vec 91.3%, cooccurrence 6.1%, coldstart 2.1%, popular (fallback) 0.5%)`; "" without a figure."""
    if not figure or figure.get("answered") is None:
        return ""
    parts = ", ".join(
        f"{source}{' (fallback)' if source == POPULAR_SOURCE else ''} {share:.1%}"
        for source, share in figure["by_source"].items()
    )
    answered, items = figure["answered"], figure["engaged_items"]
    return f"Items engaged in the window answered: {answered:.1%} of {items} ({parts})"
