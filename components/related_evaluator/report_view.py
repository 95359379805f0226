"""The run report's view model: evaluation.json (+ the training history) -> the figures, rows and sentences
the report shows, shared by its two renderers (report_html.py, report_markdown.py).

Pure functions from the RelatedEvaluator's dict to values and plain text; nothing here knows HTML or Markdown,
so both pages say the same thing and a new figure is computed once. Text is unescaped: each renderer escapes
for its format (ids and titles come from user data).

The evaluation dict (see the RelatedEvaluator executor):
    ks, sources, best_source, catalogue_size,
    splits: {validation|test: {source: {queries, answered, hit_rate, mrr, coverage, buckets}}},
    blend: {weight, rrf_k, sweep: [{weight, hit_rate_at_10, mrr_at_10}]},
    examples: [{item, bucket, popularity, lists: {source: [[candidate, score], ...]}}],
    provenance (optional, provenance_lib.build_provenance): inputs, counts, settings, code, version, date,
    embedding_map (optional, embedding_map_lib.embedding_map): sampled items and their 2-D coordinates
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from components.related_evaluator import provenance_lib
from formats.coldstart import describe_coverage
from formats.evaluation_result import COVERAGE_KEY

BUCKETS = ("head", "torso", "tail")
SPLITS = ("validation", "test")
REPORTED_SPLIT = "test"  # the headline, curves and buckets; validation only chose settings
HEADLINE_K = "10"
EXAMPLE_ROWS = 10
NO_HISTORY_NOTE = "No training history was recorded for this run, so there is no loss curve."
NO_PROVENANCE_NOTE = (
    "This evaluation records no provenance (input, settings, code): it was written by an older "
    "RelatedEvaluator."
)


# ---------------------------------------------------------------------------------------------------------
# Checking and reading the dict.


def check_evaluation(evaluation: Mapping) -> None:
    """Fails with the missing key's path, so a changed producer is caught here and not as a KeyError."""
    for key in ("ks", "sources", "best_source", "splits", "blend", "examples"):
        if key not in evaluation:
            raise ValueError(f"evaluation has no {key!r}: expected the RelatedEvaluator's evaluation.json")
    if evaluation["best_source"] not in evaluation["sources"]:
        raise ValueError(
            f"evaluation['best_source']={evaluation['best_source']!r} is not one of {evaluation['sources']}"
        )
    if HEADLINE_K not in [str(k) for k in evaluation["ks"]]:
        raise ValueError(f"evaluation['ks']={evaluation['ks']} lacks {HEADLINE_K}, the report's headline K")
    for split in SPLITS:
        by_source = evaluation["splits"].get(split)
        if by_source is None:
            raise ValueError(f"evaluation['splits'] has no {split!r} split")
        for source in evaluation["sources"]:
            metrics = by_source.get(source)
            if metrics is None:
                raise ValueError(f"evaluation['splits'][{split!r}] has no source {source!r}")
            for family in ("hit_rate", "mrr", "coverage"):
                missing = [k for k in evaluation["ks"] if str(k) not in metrics.get(family, {})]
                if missing:
                    raise ValueError(
                        f"evaluation['splits'][{split!r}][{source!r}][{family!r}] lacks K={missing}"
                    )
    for key in ("weight", "sweep"):
        if key not in evaluation["blend"]:
            raise ValueError(f"evaluation['blend'] has no {key!r}")


@dataclass(frozen=True)
class Comparison:
    """The best source's test HR@10 against one other source's."""

    source: str
    hit_rate: float
    ratio: float | None  # best / this source; None when this source scored 0


def headline(evaluation: Mapping) -> tuple[str, float, list[Comparison]]:
    """(best source, its test HR@10, the other sources compared to it)."""
    test = evaluation["splits"][REPORTED_SPLIT]
    best = evaluation["best_source"]
    best_hr = headline_hit_rate(test, best)
    others = [
        Comparison(
            s,
            headline_hit_rate(test, s),
            best_hr / headline_hit_rate(test, s) if headline_hit_rate(test, s) > 0 else None,
        )
        for s in evaluation["sources"]
        if s != best
    ]
    return best, best_hr, others


SMALL_SAMPLE = 300
"""Fewer test queries than this and the headline warns that differences mean little. At a hit rate near 0.1,
one hit rate's standard error is sqrt(0.1 * 0.9 / 300) = 0.017 at 300 queries, so two sources must differ
by about 0.05 (a 1.5x ratio) before the gap is clearly more than chance; below 300 even such ratios are
noise, and a 40-query run's "1.75x" says nothing."""


def within_noise(evaluation: Mapping) -> list[str]:
    """The sources whose paired 95% interval of test HR@10 minus the best source's includes 0: the data cannot
    tell them from the best. Empty for an evaluation without `comparisons`."""
    compared = evaluation.get("comparisons", {}).get("splits", {}).get(REPORTED_SPLIT, {})
    return [source for source, c in compared.items() if float(c["low"]) <= 0 <= float(c["high"])]


def headline_queries(evaluation: Mapping) -> int | None:
    """How many test queries the headline rests on (the best source's), when recorded."""
    queries = evaluation["splits"][REPORTED_SPLIT][evaluation["best_source"]].get("queries")
    return None if queries is None else int(queries)


def noise_note(evaluation: Mapping) -> str:
    """Whether the best source's lead is within noise: the paired 95% intervals of the other sources' test
    HR@10 minus the best's (`comparisons`), and a warning on small samples (under SMALL_SAMPLE queries)."""
    compared = evaluation.get("comparisons", {}).get("splits", {}).get(REPORTED_SPLIT, {})
    notes = []
    if compared:
        within = within_noise(evaluation)
        if within:
            notes.append(
                f"Its lead over {', '.join(within)} is within noise (the paired 95% interval includes 0)."
            )
        else:
            notes.append(
                "Its lead over every other source is beyond noise (every paired 95% interval excludes 0)."
            )
    queries = headline_queries(evaluation)
    if queries is not None and queries < SMALL_SAMPLE:
        notes.append(
            f"Only {queries} test queries (under {SMALL_SAMPLE}): differences between sources mean little at "
            "this size."
        )
    return " ".join(notes)


def versus_parts(evaluation: Mapping) -> list[tuple[str, str]]:
    """(source, "0.130 (1.17x)") for every other source; "(within noise)" instead of a ratio when the paired
    interval includes 0, since a ratio there claims a difference the data does not show."""
    _, _, others = headline(evaluation)
    within = set(within_noise(evaluation))
    return [
        (
            c.source,
            f"{format_metric(c.hit_rate)} ({'within noise' if c.source in within else _ratio(c.ratio)})",
        )
        for c in others
    ]


def verdict_lead(evaluation: Mapping) -> str:
    """The headline's opening words: "is the best source" only when no other source is within noise of it."""
    if within_noise(evaluation):
        return "was chosen on the validation split but is not clearly the best"
    return "is the best source (chosen on the validation split)"


def headline_hit_rate(by_source: Mapping, source: str, k: str = HEADLINE_K) -> float:
    """One source's HR@K (HR@10 by default) in a split's {source: metrics}."""
    return float(by_source[source]["hit_rate"][k])


def format_metric(value: float | None) -> str:
    """A metric as both pages print it: three decimals, "n/a" when not measured."""
    return "n/a" if value is None else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def item_label(item: str, titles: Mapping[str, str]) -> str:
    """'Title (id)' where a title is known, the id otherwise (unescaped: callers escape for their format)."""
    title = titles.get(item)
    return f"{title} ({item})" if title else item


def loss_series(history: Mapping | None) -> dict[str, list[float]]:
    """The loss curves that exist and have finite values: loss and val_loss, in that order."""
    if not history:
        return {}
    series = {}
    for key in ("loss", "val_loss"):
        values = [float(v) for v in history.get(key) or []]
        if values and all(math.isfinite(v) for v in values):
            series[key] = values
    return series


@dataclass(frozen=True)
class PairedCell:
    """One paired HR@10 difference against the best source, as the report prints it."""

    text: str  # "+0.011 [-0.004, +0.026]"
    clear: bool  # the 95% interval excludes 0


def paired_rows(evaluation: Mapping, split: str) -> list[tuple[str, list[PairedCell]]]:
    """(source, [all queries, head, torso, tail]) for every source against the best one; empty for an
    evaluation written before comparisons existed."""
    by_source = evaluation.get("comparisons", {}).get("splits", {}).get(split, {})

    def cell(difference: Mapping) -> PairedCell:
        low, high = float(difference["low"]), float(difference["high"])
        text = f"{float(difference['difference']):+.3f} [{low:+.3f}, {high:+.3f}]"
        return PairedCell(text, low > 0 or high < 0)

    return [
        (source, [cell(d), *(cell(d["buckets"][bucket]) for bucket in BUCKETS)])
        for source, d in by_source.items()
    ]


PAIRED_NOTE = (
    "Each source's test HR@10 minus the best source's, on the same queries, with a 95% interval of the "
    "per-query differences. An interval that includes 0 is within noise; bold: it does not."
)


# ---------------------------------------------------------------------------------------------------------
# Trust: provenance, score scales, the embedding map, coverage.


def provenance_rows(evaluation: Mapping) -> list[tuple[str, str]]:
    """(label, text) of the provenance block: each input with its fingerprint, the row counts, the code, the
    version and the date; empty for an evaluation written before provenance existed."""
    provenance = evaluation.get("provenance")
    if not provenance:
        return []
    rows = []
    for source in provenance.get("inputs", []):
        text = str(source.get("path", provenance_lib.NOT_RECORDED))
        if "fingerprint" in source:
            text += f" (fingerprint {source['fingerprint']})"
        rows.append((str(source.get("name", "input")), text))
    counts = provenance.get("counts") or {}
    if counts:
        rows.append(
            (
                "row counts",
                " · ".join(f"{provenance_lib.count_label(n)} {int(v):,}" for n, v in counts.items()),
            )
        )
    rows += [
        ("code", provenance_lib.code_description(provenance.get("code") or {})),
        ("version", provenance_lib.version_description(provenance.get("version"))),
        ("written", f"{provenance.get('written_at', provenance_lib.NOT_RECORDED)} (UTC)"),
    ]
    return rows


def provenance_settings(evaluation: Mapping) -> dict[str, object]:
    """Every setting of the run, flattened ("trainer.epochs" -> 25); empty when not recorded."""
    return dict((evaluation.get("provenance") or {}).get("settings") or {})


@dataclass(frozen=True)
class ScoreScale:
    """What a source's scores are: a short unit for each list, and a sentence for the legend."""

    unit: str
    meaning: str


def score_scale(source: str, evaluation: Mapping) -> ScoreScale:
    """The scale of a source's scores, so that 0.8 (a cosine), 0.8 (a logit) and 0.08 (an RRF score) are
    not read as one another. Exponents come from the recorded settings when there are some."""
    settings = provenance_settings(evaluation)
    blend = evaluation.get("blend") or {}

    def exponent(key: str) -> str:
        value = settings.get(key)
        return "^e" if value is None else f"^{float(value):g}"

    if source == "pin2vec":
        return ScoreScale(
            "inner product, unbounded",
            'hidden(query) . softmax row(candidate), the network\'s logit for "engaged next": unbounded; '
            "higher is more likely.",
        )
    if source == "pin2vec_similar":
        return ScoreScale("cosine, -1..1", "cosine similarity of the two item embeddings, in [-1, 1].")
    if source == "cooccurrence":
        return ScoreScale(
            "damped count, >= 0",
            "co-occurrence count / the candidate's co-occurrences"
            f"{exponent('cooccurrence.popularity_exponent')} (an exponent of 0 gives raw counts, 1 is close "
            "to PMI): >= 0, unbounded.",
        )
    if source == "board":
        return ScoreScale(
            "board weight, >= 0",
            "saves to the same boards, each board's pairs weighted 1 / (board size - 1)"
            f"{exponent('board.board_size_exponent')}, divided by the candidate's total weight"
            f"{exponent('board.popularity_exponent')}: >= 0, unbounded.",
        )
    if source == "blend" and blend.get("method") == "rerank":
        return ScoreScale(
            "reranker score, unbounded",
            "the learned reranker's linear score: unbounded; only the order within one list means anything.",
        )
    if source == "blend":
        rrf_k = float(blend.get("rrf_k", 0.0))
        return ScoreScale(
            f"RRF score, 0..{1.0 / (rrf_k + 1.0):.3g}",
            f"reciprocal-rank fusion: weight / (rrf_k + rank) summed over the sources (rrf_k {rrf_k:g}), at "
            f"most {1.0 / (rrf_k + 1.0):.3g}; only the order means anything.",
        )
    return ScoreScale("score", "scale not recorded.")


def embedding_map_caption(embedding_map: Mapping) -> str:
    """What the map shows and how far to trust its distances."""
    shares = [float(v) for v in embedding_map.get("explained_variance", [0.0, 0.0])]
    drawn, total = len(embedding_map.get("items", [])), int(embedding_map.get("total_items", 0))
    sample = (
        f"All {total:,} embedded items"
        if drawn >= total
        else f"{drawn:,} of {total:,} embedded items (as many from each popularity bucket, fixed seed)"
    )
    return (
        f"{sample}, projected on the first two principal components of their unit-length embeddings (the "
        f"cosine space of pin2vec_similar). The two axes hold {sum(shares):.0%} of the variance, so nearby "
        "points are often related items while distant ones may still be close in the full space. Named: the "
        "example items below and, when titles are given, the most engaged titled items."
    )


def coverage_text(evaluation: Mapping) -> str:
    """The share of items engaged in the window that serving answers, by source (formats/coldstart.py)."""
    return describe_coverage(evaluation.get(COVERAGE_KEY))


# ---------------------------------------------------------------------------------------------------------
# The blend's sentences.


def rerank_summary(blend: Mapping) -> str:
    """One sentence on the learned reranker: skipped, or its validation HR@10 against RRF's."""
    rerank = blend.get("rerank")
    if not rerank:
        return ""
    if "skipped" in rerank:
        return f"Learned reranker not trained: {rerank['skipped']}."
    used = "the pushed blend is the reranker's" if blend.get("method") == "rerank" else "RRF is kept"
    return (
        f"Learned reranker (L2 {rerank['l2']:g}, fitted on {rerank['training_queries']} held-out rerank "
        f"transitions): validation HR@10 {format_metric(rerank['validation_hit_rate_at_10'])} against RRF's "
        f"{format_metric(rerank['rrf_validation_hit_rate_at_10'])}; {used}. The table above is the RRF sweep."
    )


def tuned_on(blend: Mapping) -> str:
    """Which queries the RRF weight was chosen on: the rerank split (validation stays out of sample) or, when
    the Examples have none, validation."""
    return "rerank" if blend.get("tuned_on") == "rerank" else "validation"


def rrf_k_summary(blend: Mapping) -> str:
    """One sentence on the fusion constants tried, when there were several."""
    tried = blend.get("rrf_k_sweep") or []
    if len(tried) < 2:
        return ""
    parts = [
        f"rrf_k {t['rrf_k']:g}: HR@10 {format_metric(t['hit_rate_at_10'])} at weight {t['weight']:g}"
        for t in tried
    ]
    return f"Fusion constants tried on {tuned_on(blend)} (best weight each): " + "; ".join(parts) + "."
