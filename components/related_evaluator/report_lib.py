"""The run report: evaluation.json (+ the training history) as one self-contained HTML page and as Markdown.

Pure functions from the RelatedEvaluator's dict to text. The page carries its own CSS and inline SVG charts
drawn here (no JavaScript, no fonts or images from the network), so it opens from a file anywhere, including
a bucket viewed offline. Every id and title is escaped: they come from user data.

The evaluation dict (see the RelatedEvaluator executor):
    ks, sources, best_source, catalogue_size,
    splits: {validation|test: {source: {queries, answered, hit_rate, mrr, coverage, buckets}}},
    blend: {weight, rrf_k, sweep: [{weight, hit_rate_at_10, mrr_at_10}]},
    examples: [{item, bucket, popularity, lists: {source: [[candidate, score], ...]}}],
    provenance (optional, provenance_lib.build_provenance): inputs, counts, settings, code, version, date,
    embedding_map (optional, embedding_map_lib.embedding_map): sampled items and their 2-D coordinates
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.related_evaluator import provenance_lib
from components.related_evaluator.loss_reading import read_loss_curves
from components.related_evaluator.stability_report import stability_html, stability_markdown
from components.related_evaluator.svg_charts import (
    Chart,
    PointGroup,
    Series,
    bar_chart,
    line_chart,
    scatter_chart,
)
from formats.coldstart import describe_coverage
from formats.evaluation_result import COVERAGE_KEY

BUCKETS = ("head", "torso", "tail")
SPLITS = ("validation", "test")
REPORTED_SPLIT = "test"  # the headline, curves and buckets; validation only chose settings
HEADLINE_K = "10"
EXAMPLE_ROWS = 10
NO_HISTORY_NOTE = "No training history was recorded for this run, so there is no loss curve."
_PALETTE = {
    "pin2vec": "#2563eb",
    "pin2vec_similar": "#7c3aed",
    "cooccurrence": "#d97706",
    "board": "#dc2626",
    "blend": "#059669",
}
_OTHER_COLOURS = ("#7c3aed", "#db2777", "#0891b2", "#65a30d", "#475569")
_SPARK = "▁▂▃▄▅▆▇█"


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
    best_hr = _hr(test, best)
    others = [
        Comparison(s, _hr(test, s), best_hr / _hr(test, s) if _hr(test, s) > 0 else None)
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
        (c.source, f"{_fmt(c.hit_rate)} ({'within noise' if c.source in within else _ratio(c.ratio)})")
        for c in others
    ]


def verdict_lead(evaluation: Mapping) -> str:
    """The headline's opening words: "is the best source" only when no other source is within noise of it."""
    if within_noise(evaluation):
        return "was chosen on the validation split but is not clearly the best"
    return "is the best source (chosen on the validation split)"


def _hr(by_source: Mapping, source: str, k: str = HEADLINE_K) -> float:
    return float(by_source[source]["hit_rate"][k])


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _name(item: str, titles: Mapping[str, str]) -> str:
    """'Title (id)' where a title is known, the id otherwise (unescaped: callers escape for their format)."""
    title = titles.get(item)
    return f"{title} ({item})" if title else item


def _colour(source: str, sources: Sequence[str]) -> str:
    if source in _PALETTE:
        return _PALETTE[source]
    others = [s for s in sources if s not in _PALETTE]
    return _OTHER_COLOURS[others.index(source) % len(_OTHER_COLOURS)] if source in others else "#475569"


def _loss_series(history: Mapping | None) -> dict[str, list[float]]:
    """The loss curves that exist and have finite values: loss and val_loss, in that order."""
    if not history:
        return {}
    series = {}
    for key in ("loss", "val_loss"):
        values = [float(v) for v in history.get(key) or []]
        if values and all(math.isfinite(v) for v in values):
            series[key] = values
    return series


def sparkline(values: Sequence[float]) -> str:
    """One block character per value, lowest to highest: a loss curve that fits in a Markdown cell."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    return "".join(_SPARK[0 if span == 0 else round((v - low) / span * (len(_SPARK) - 1))] for v in values)


# ---------------------------------------------------------------------------------------------------------
# HTML.

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1e293b;background:#f8fafc;
margin:0;padding:24px}
main{max-width:1180px;margin:0 auto}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #e2e8f0}
.sub{color:#64748b;margin:0 0 16px}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px 18px;min-width:180px;
border-top:5px solid var(--c)}
.card.best{box-shadow:0 0 0 2px var(--c)}
.card .v{font-size:30px;font-weight:650}.card .k{color:#64748b;font-size:13px}
.verdict{font-size:17px;background:#fff;border-left:5px solid #059669;padding:10px 16px;border-radius:6px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{background:#fff;border:1px solid #e2e8f0;border-radius:10px}
table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:14px}
th,td{border:1px solid #e2e8f0;padding:4px 10px;text-align:right}
th{background:#f1f5f9}td.l,th.l{text-align:left}
td.top{font-weight:700;background:#ecfdf5}tr.chosen td{background:#fef3c7;font-weight:650}
.examples{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:16px}
.example{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:10px 14px}
.example h3{font-size:15px;margin:0 0 6px}.example ol{margin:0;padding-left:22px}
.example .src{font-weight:600;font-size:13px;margin-top:6px}.score{color:#94a3b8;font-size:12px}
.reading{background:#fff;border-left:5px solid #2563eb;padding:8px 14px;border-radius:6px}
table.provenance th{text-align:left;width:170px}details{margin:6px 0}summary{cursor:pointer;color:#475569}
.note{color:#64748b;font-style:italic}.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;
margin-right:6px}
"""


def _source_cell(source: str, sources: Sequence[str]) -> str:
    return f'<span class="swatch" style="background:{_colour(source, sources)}"></span>{html.escape(source)}'


def _headline_html(evaluation: Mapping) -> str:
    best, best_hr, _ = headline(evaluation)
    sources = evaluation["sources"]
    test = evaluation["splits"][REPORTED_SPLIT]
    cards = []
    for source in sources:
        best_class = " best" if source == best else ""
        tag = "best on validation" if source == best else "test HR@10"
        cards.append(
            f'<div class="card{best_class}" style="--c:{_colour(source, sources)}">'
            f'<div class="k">{html.escape(source)} · {tag}</div>'
            f'<div class="v">{_fmt(_hr(test, source))}</div>'
            f'<div class="k">MRR@10 {_fmt(test[source]["mrr"][HEADLINE_K])} · coverage@10 '
            f"{_fmt(test[source]['coverage'][HEADLINE_K])}</div></div>"
        )
    versus = "; ".join(
        f"{html.escape(source)} {html.escape(text)}" for source, text in versus_parts(evaluation)
    )
    return (
        f'<p class="verdict"><b>{html.escape(best)}</b> {verdict_lead(evaluation)}: '
        f"test HR@10 <b>{_fmt(best_hr)}</b>" + (f" vs {versus}" if versus else "") + ". "
        f"{html.escape(noise_note(evaluation))}</p>"
        f'<div class="cards">{"".join(cards)}</div>'
    )


def _loss_html(history: Mapping | None) -> str:
    series = _loss_series(history)
    if not series:
        return f'<p class="note">{NO_HISTORY_NOTE}</p>'
    epochs = max(len(v) for v in series.values())
    lines = [
        Series(
            "training loss" if key == "loss" else "validation loss",
            "#2563eb" if key == "loss" else "#d97706",
            [(epoch, value) for epoch, value in enumerate(values, 1)],
            dashed=key == "val_loss",
        )
        for key, values in series.items()
    ]
    ticks = list(range(1, epochs + 1)) if epochs <= 12 else None
    return line_chart(
        Chart("Training loss per epoch", "epoch", "loss"), lines, x_ticks=ticks, y_from_zero=False
    )


def _hit_rate_chart(evaluation: Mapping, split: str) -> str:
    ks = [int(k) for k in evaluation["ks"]]
    by_source = evaluation["splits"][split]
    sources = evaluation["sources"]
    lines = [
        Series(s, _colour(s, sources), [(k, float(by_source[s]["hit_rate"][str(k)])) for k in ks])
        for s in sources
    ]
    return line_chart(Chart(f"HR@K on the {split} split", "K", "hit rate"), lines, x_ticks=ks)


def _bucket_chart(evaluation: Mapping) -> str:
    by_source = evaluation["splits"][REPORTED_SPLIT]
    sources = evaluation["sources"]
    series = [
        (
            s,
            _colour(s, sources),
            [
                float(by_source[s]["buckets"].get(b, {}).get("hit_rate", {}).get(HEADLINE_K, 0.0))
                for b in BUCKETS
            ],
        )
        for s in sources
    ]
    return bar_chart(Chart("Test HR@10 by query popularity", "query item's bucket", "HR@10"), BUCKETS, series)


def _sweep_chart(evaluation: Mapping) -> str:
    blend = evaluation["blend"]
    sweep = sorted(blend["sweep"], key=lambda s: s["weight"])
    lines = [
        Series("HR@10", _PALETTE["blend"], [(s["weight"], s["hit_rate_at_10"]) for s in sweep]),
        Series("MRR@10", "#64748b", [(s["weight"], s["mrr_at_10"]) for s in sweep], dashed=True),
    ]
    return line_chart(
        Chart(
            f"Blend weight sweep ({_tuned_on(blend)})", "weight of Pin2Vec (0 = co-occurrence only)", "metric"
        ),
        lines,
        x_ticks=[s["weight"] for s in sweep] if len(sweep) <= 11 else None,
        marker=(float(blend["weight"]), f"chosen {blend['weight']:g}"),
    )


def _best_per_column(values: Sequence[float]) -> set[int]:
    top = max(values) if values else None
    return {i for i, v in enumerate(values) if v == top and len(values) > 1}


def _metrics_table_html(evaluation: Mapping) -> str:
    ks = [str(k) for k in evaluation["ks"]]
    sources = evaluation["sources"]
    columns = [("hit_rate", "HR"), ("mrr", "MRR"), ("coverage", "coverage")]
    head = "".join(f"<th>{label}@{k}</th>" for _, label in columns for k in ks)
    rows = []
    for split in SPLITS:
        by_source = evaluation["splits"][split]
        best = {
            (family, k): _best_per_column([float(by_source[s][family][k]) for s in sources])
            for family, _ in columns
            for k in ks
        }
        for i, source in enumerate(sources):
            metrics = by_source[source]
            cells = "".join(
                f"<td{' class=top' if i in best[(family, k)] else ''}>{_fmt(float(metrics[family][k]))}</td>"
                for family, _ in columns
                for k in ks
            )
            rows.append(
                f'<tr><td class="l">{html.escape(split)}</td>'
                f'<td class="l">{_source_cell(source, sources)}</td>'
                f"<td>{int(metrics.get('queries', 0))}</td><td>{_fmt(metrics.get('answered'))}</td>"
                f"{cells}</tr>"
            )
    return (
        '<table><tr><th class="l">split</th><th class="l">source</th><th>queries</th><th>answered</th>'
        f"{head}</tr>{''.join(rows)}</table>"
        f'<p class="note">Catalogue: {int(evaluation.get("catalogue_size", 0)):,} items; coverage = share of '
        "it that appears in some top-K answer. Bold: best in its column and split.</p>"
    )


def _bucket_table_html(evaluation: Mapping, split: str) -> str:
    sources = evaluation["sources"]
    by_source = evaluation["splits"][split]
    head = "".join(f'<th colspan="2">{_source_cell(s, sources)}</th>' for s in sources)
    sub = "<th>HR@10</th><th>MRR@10</th>" * len(sources)
    rows = []
    for bucket in BUCKETS:
        per = [by_source[s]["buckets"].get(bucket, {}) for s in sources]
        queries = max((int(b.get("queries", 0)) for b in per), default=0)
        hrs = [float(b.get("hit_rate", {}).get(HEADLINE_K, 0.0)) for b in per]
        mrrs = [float(b.get("mrr", {}).get(HEADLINE_K, 0.0)) for b in per]
        best_hr, best_mrr = _best_per_column(hrs), _best_per_column(mrrs)
        cells = "".join(
            f"<td{' class=top' if i in best_hr else ''}>{_fmt(hr)}</td>"
            f"<td{' class=top' if i in best_mrr else ''}>{_fmt(mrr)}</td>"
            for i, (hr, mrr) in enumerate(zip(hrs, mrrs, strict=True))
        )
        rows.append(f'<tr><td class="l">{bucket}</td><td>{queries}</td>{cells}</tr>')
    return (
        f'<table><tr><th class="l" rowspan="2">bucket ({html.escape(split)})</th><th rowspan="2">queries</th>'
        f"{head}</tr><tr>{sub}</tr>{''.join(rows)}</table>"
    )


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


def _paired_table_html(evaluation: Mapping) -> str:
    rows = paired_rows(evaluation, REPORTED_SPLIT)
    if not rows:
        return ""
    sources = evaluation["sources"]
    body = "".join(
        f'<tr><td class="l">{_source_cell(source, sources)}</td>'
        + "".join(f"<td{' class=top' if c.clear else ''}>{html.escape(c.text)}</td>" for c in cells)
        + "</tr>"
        for source, cells in rows
    )
    best = html.escape(evaluation["comparisons"]["against"])
    return (
        f"<h3>Against {best}, paired</h3>"
        f'<table><tr><th class="l">source</th><th>all queries</th>'
        f"{''.join(f'<th>{b}</th>' for b in BUCKETS)}</tr>{body}</table>"
        f'<p class="note">{html.escape(PAIRED_NOTE)}</p>'
    )


def _sweep_table_html(evaluation: Mapping) -> str:
    blend = evaluation["blend"]
    rows = []
    for s in sorted(blend["sweep"], key=lambda s: s["weight"]):
        chosen = math.isclose(float(s["weight"]), float(blend["weight"]))
        rows.append(
            f"<tr{' class=chosen' if chosen else ''}><td>{float(s['weight']):g}"
            f"{' ← chosen' if chosen else ''}</td><td>{_fmt(s['hit_rate_at_10'])}</td>"
            f"<td>{_fmt(s['mrr_at_10'])}</td></tr>"
        )
    on = html.escape(_tuned_on(blend))
    return (
        f"<table><tr><th>Pin2Vec weight</th><th>{on} HR@10</th><th>{on} MRR@10</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _examples_html(evaluation: Mapping, titles: Mapping[str, str]) -> str:
    if not evaluation["examples"]:
        return '<p class="note">No example items.</p>'
    sources = evaluation["sources"]
    blocks = []
    for example in evaluation["examples"]:
        item = str(example["item"])
        lists = []
        for source in sources:
            ranked = example.get("lists", {}).get(source) or []
            entries = "".join(
                f'<li>{html.escape(_name(str(c), titles))} <span class="score">{float(score):.3g}</span></li>'
                for c, score in ranked[:EXAMPLE_ROWS]
            )
            unit = html.escape(score_scale(source, evaluation).unit)
            lists.append(
                f'<div class="src">{_source_cell(source, sources)} '
                f'<span class="score">scores: {unit}</span></div>'
                + (f"<ol>{entries}</ol>" if entries else '<p class="note">no candidates</p>')
            )
        blocks.append(
            f'<div class="example"><h3>{html.escape(_name(item, titles))}</h3>'
            f'<div class="k">{html.escape(str(example.get("bucket", "")))} · '
            f"{int(example.get('popularity', 0)):,} engagements</div>{''.join(lists)}</div>"
        )
    return f'<div class="examples">{"".join(blocks)}</div>'


# ---------------------------------------------------------------------------------------------------------
# Trust: provenance, score scales, the embedding map, the loss reading (shared by HTML and Markdown).

NO_PROVENANCE_NOTE = (
    "This evaluation records no provenance (input, settings, code): it was written by an older "
    "RelatedEvaluator."
)
BUCKET_COLOURS = {"head": "#dc2626", "torso": "#d97706", "tail": "#2563eb"}
MAP_LABEL_CHARS = 28  # a longer title is cut on the map (the tooltip keeps it whole)


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


def _embedding_map_html(evaluation: Mapping, titles: Mapping[str, str]) -> str:
    embedding_map = evaluation.get("embedding_map")
    if not embedding_map or not embedding_map.get("items"):
        return '<p class="note">No embedding map was recorded for this run.</p>'
    names = list(embedding_map.get("bucket_names") or BUCKETS)
    position = {}
    groups = []
    for b in reversed(range(len(names))):  # tail first, so the few head items draw on top
        points = []
        columns = (embedding_map[key] for key in ("items", "x", "y", "bucket"))
        for item, x, y, bucket in zip(*columns, strict=True):
            position[item] = (float(x), float(y))
            if int(bucket) == b:
                points.append((float(x), float(y), f"{_name(str(item), titles)} · {names[b]}"))
        groups.append(PointGroup(names[b], BUCKET_COLOURS.get(names[b], "#475569"), points))
    labels = []
    for item in embedding_map.get("marked", []):
        if item in position:
            text = titles.get(item) or str(item)
            text = text if len(text) <= MAP_LABEL_CHARS else text[: MAP_LABEL_CHARS - 1] + "…"
            labels.append((*position[item], text))
    shares = [float(v) for v in embedding_map.get("explained_variance", [0.0, 0.0])]
    chart = Chart(
        "Item embeddings in 2-D (PCA), by popularity bucket",
        f"first principal component ({shares[0]:.0%} of variance)",
        f"second principal component ({shares[1]:.0%})",
        width=700,
        height=540,
    )
    return (
        f'<div class="charts">{scatter_chart(chart, groups, labels)}</div>'
        f'<p class="note">{html.escape(embedding_map_caption(embedding_map))}</p>'
    )


def _provenance_html(evaluation: Mapping) -> str:
    rows = provenance_rows(evaluation)
    if not rows:
        return f'<p class="note">{html.escape(NO_PROVENANCE_NOTE)}</p>'
    body = "".join(
        f'<tr><th class="l">{html.escape(label)}</th><td class="l">{html.escape(text)}</td></tr>'
        for label, text in rows
    )
    settings = provenance_settings(evaluation)
    listed = "".join(
        f'<tr><td class="l">{html.escape(name)}</td><td class="l">{html.escape(str(value))}</td></tr>'
        for name, value in settings.items()
    )
    details = (
        f"<details><summary>All {len(settings)} settings of the run</summary>"
        f'<table><tr><th class="l">setting</th><th class="l">value</th></tr>{listed}</table></details>'
        if settings
        else '<p class="note">The run\'s settings were not recorded.</p>'
    )
    return f'<table class="provenance">{body}</table>{details}'


def _scales_html(evaluation: Mapping) -> str:
    sources = evaluation["sources"]
    rows = "".join(
        f'<tr><td class="l">{_source_cell(s, sources)}</td>'
        f'<td class="l">{html.escape(score_scale(s, evaluation).meaning)}</td></tr>'
        for s in sources
    )
    return f'<table><tr><th class="l">source</th><th class="l">its scores</th></tr>{rows}</table>'


def coverage_text(evaluation: Mapping) -> str:
    """The share of items engaged in the window that serving answers, by source (formats/coldstart.py)."""
    return describe_coverage(evaluation.get(COVERAGE_KEY))


def render_html(evaluation: Mapping, history: Mapping | None, titles: Mapping[str, str]) -> str:
    """The whole report page: self-contained HTML with inline CSS and SVG."""
    check_evaluation(evaluation)
    titles = titles or {}
    blend = evaluation["blend"]
    sections = [
        "<h1>pin2vec run report</h1>",
        f'<p class="sub">{len(evaluation["sources"])} candidate sources evaluated the same way on '
        f"{int(evaluation['splits'][REPORTED_SPLIT][evaluation['best_source']].get('queries', 0)):,} test "
        "queries (each user's last engagement, the one before it as the query); settings were chosen on the "
        "validation split only.</p>",
        _headline_html(evaluation),
        f'<p class="sub">{html.escape(coverage_text(evaluation))}</p>' if coverage_text(evaluation) else "",
        "<h2>What this report is from</h2>",
        _provenance_html(evaluation),
        "<h2>Training and hit rate</h2>",
        f'<div class="charts">{_loss_html(history)}{_hit_rate_chart(evaluation, REPORTED_SPLIT)}</div>',
        f'<p class="reading">{html.escape(read_loss_curves(history))}</p>' if _loss_series(history) else "",
        "<h2>All metrics</h2>",
        _metrics_table_html(evaluation),
        "<h2>By popularity of the query item</h2>",
        '<p class="sub">Head: the most engaged items making up the first third of all engagements; '
        "torso: the next third; tail: the rest.</p>",
        f'<div class="charts">{_bucket_chart(evaluation)}</div>',
        _bucket_table_html(evaluation, REPORTED_SPLIT),
        _paired_table_html(evaluation),
        stability_html(evaluation),
        "<h2>Blend</h2>",
        f'<p class="sub">Weighted reciprocal-rank fusion (rrf_k {float(blend.get("rrf_k", 0)):g}); the '
        f"weight is chosen on the {html.escape(_tuned_on(blend))} split: <b>{float(blend['weight']):g}</b>. "
        f"{html.escape(_rrf_k_summary(blend))} {html.escape(_rerank_summary(blend))}</p>",
        f'<div class="charts">{_sweep_chart(evaluation)}</div>',
        _sweep_table_html(evaluation),
        "<h2>The embedding space</h2>",
        _embedding_map_html(evaluation, titles),
        "<h2>Example related items</h2>",
        '<p class="sub">Each source scores on its own scale: compare ranks across sources, not scores.</p>',
        _scales_html(evaluation),
        _examples_html(evaluation, titles),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>pin2vec run report</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )


# ---------------------------------------------------------------------------------------------------------
# Markdown.


def _rerank_summary(blend: Mapping) -> str:
    """One sentence on the learned reranker: skipped, or its validation HR@10 against RRF's."""
    rerank = blend.get("rerank")
    if not rerank:
        return ""
    if "skipped" in rerank:
        return f"Learned reranker not trained: {rerank['skipped']}."
    used = "the pushed blend is the reranker's" if blend.get("method") == "rerank" else "RRF is kept"
    return (
        f"Learned reranker (L2 {rerank['l2']:g}, fitted on {rerank['training_queries']} held-out rerank "
        f"transitions): validation HR@10 {_fmt(rerank['validation_hit_rate_at_10'])} against RRF's "
        f"{_fmt(rerank['rrf_validation_hit_rate_at_10'])}; {used}. The table above is the RRF sweep."
    )


def _tuned_on(blend: Mapping) -> str:
    """Which queries the RRF weight was chosen on: the rerank split (validation stays out of sample) or, when
    the Examples have none, validation."""
    return "rerank" if blend.get("tuned_on") == "rerank" else "validation"


def _rrf_k_summary(blend: Mapping) -> str:
    """One sentence on the fusion constants tried, when there were several."""
    tried = blend.get("rrf_k_sweep") or []
    if len(tried) < 2:
        return ""
    parts = [
        f"rrf_k {t['rrf_k']:g}: HR@10 {_fmt(t['hit_rate_at_10'])} at weight {t['weight']:g}" for t in tried
    ]
    return f"Fusion constants tried on {_tuned_on(blend)} (best weight each): " + "; ".join(parts) + "."


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell (and free of raw HTML)."""
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _provenance_markdown(evaluation: Mapping) -> list[str]:
    rows = provenance_rows(evaluation)
    out = ["## What this report is from", ""]
    if not rows:
        return [*out, f"_{NO_PROVENANCE_NOTE}_", ""]
    out += [f"- {_md(label)}: {_md(text)}" for label, text in rows]
    settings = provenance_settings(evaluation)
    if settings:
        out += ["", f"All {len(settings)} settings of the run:", ""]
        out += _md_table(["setting", "value"], [[_md(k), _md(v)] for k, v in settings.items()])
    return [*out, ""]


def render_markdown(evaluation: Mapping, history: Mapping | None, titles: Mapping[str, str]) -> str:
    """The report's figures as Markdown tables (no charts; the loss as a sparkline and a table)."""
    check_evaluation(evaluation)
    titles = titles or {}
    best, best_hr, _ = headline(evaluation)
    sources = evaluation["sources"]
    ks = [str(k) for k in evaluation["ks"]]
    versus = "; ".join(f"{_md(source)} {text}" for source, text in versus_parts(evaluation))
    out = [
        "# pin2vec run report",
        "",
        f"**{_md(best)}** {verdict_lead(evaluation)}: test HR@10 **{_fmt(best_hr)}**"
        + (f" vs {versus}" if versus else "")
        + ". "
        + noise_note(evaluation),
        *(["", coverage_text(evaluation) + "."] if coverage_text(evaluation) else []),
        "",
        *_provenance_markdown(evaluation),
        "## Training loss",
        "",
    ]
    series = _loss_series(history)
    if series:
        for key, values in series.items():
            out.append(f"- {key}: `{sparkline(values)}` {_fmt(values[0])} -> {_fmt(values[-1])}")
        out += ["", read_loss_curves(history)]
        epochs = max(len(v) for v in series.values())
        table = [
            [str(e + 1), *(_fmt(v[e]) if e < len(v) else "" for v in series.values())] for e in range(epochs)
        ]
        out += ["", *_md_table(["epoch", *series], table)]
    else:
        out.append(f"_{NO_HISTORY_NOTE}_")

    out += ["", f"## HR@K ({REPORTED_SPLIT})", ""]
    test = evaluation["splits"][REPORTED_SPLIT]
    out += _md_table(
        ["source", *(f"HR@{k}" for k in ks)],
        [[_md(s), *(_fmt(float(test[s]["hit_rate"][k])) for k in ks)] for s in sources],
    )

    out += ["", "## All metrics", ""]
    header = [
        "split",
        "source",
        "queries",
        "answered",
        *(f"{label}@{k}" for label in ("HR", "MRR", "coverage") for k in ks),
    ]
    rows = []
    for split in SPLITS:
        for s in sources:
            m = evaluation["splits"][split][s]
            rows.append(
                [
                    split,
                    _md(s),
                    str(int(m.get("queries", 0))),
                    _fmt(m.get("answered")),
                    *(_fmt(float(m[family][k])) for family in ("hit_rate", "mrr", "coverage") for k in ks),
                ]
            )
    out += _md_table(header, rows)
    out.append(f"\nCatalogue: {int(evaluation.get('catalogue_size', 0)):,} items.")

    out += ["", f"## By popularity of the query item ({REPORTED_SPLIT})", ""]
    bucket_rows = []
    for bucket in BUCKETS:
        per = [test[s]["buckets"].get(bucket, {}) for s in sources]
        queries = max((int(b.get("queries", 0)) for b in per), default=0)
        cells = [
            f"{_fmt(float(b.get('hit_rate', {}).get(HEADLINE_K, 0.0)))} / "
            f"{_fmt(float(b.get('mrr', {}).get(HEADLINE_K, 0.0)))}"
            for b in per
        ]
        bucket_rows.append([bucket, str(queries), *cells])
    out += _md_table(["bucket", "queries", *(f"{_md(s)} HR@10 / MRR@10" for s in sources)], bucket_rows)
    paired = paired_rows(evaluation, REPORTED_SPLIT)
    if paired:
        out += ["", f"### Against {_md(evaluation['comparisons']['against'])}, paired", ""]
        out += _md_table(
            ["source", "all queries", *BUCKETS],
            [[_md(s), *(f"**{c.text}**" if c.clear else c.text for c in cells)] for s, cells in paired],
        )
        out += ["", PAIRED_NOTE]
    out += stability_markdown(evaluation)

    blend = evaluation["blend"]
    out += [
        "",
        f"## Blend weight sweep ({_tuned_on(blend)})",
        "",
        f"Chosen weight: **{float(blend['weight']):g}** (rrf_k {float(blend.get('rrf_k', 0)):g}). "
        f"{_rrf_k_summary(blend)} {_rerank_summary(blend)}",
        "",
    ]
    sweep_rows = []
    for s in sorted(blend["sweep"], key=lambda s: s["weight"]):
        chosen = math.isclose(float(s["weight"]), float(blend["weight"]))
        weight = f"**{float(s['weight']):g}** (chosen)" if chosen else f"{float(s['weight']):g}"
        sweep_rows.append([weight, _fmt(s["hit_rate_at_10"]), _fmt(s["mrr_at_10"])])
    on = _tuned_on(blend)
    out += _md_table(["Pin2Vec weight", f"{on} HR@10", f"{on} MRR@10"], sweep_rows)

    embedding_map = evaluation.get("embedding_map")
    if embedding_map and embedding_map.get("items"):
        caption = embedding_map_caption(embedding_map)
        out += ["", "## The embedding space", "", f"{caption} (drawn in report.html)"]

    out += ["", "## Example related items", "", "Each source scores on its own scale:", ""]
    out += [f"- {_md(s)}: {_md(score_scale(s, evaluation).meaning)}" for s in sources]
    out.append("")
    for example in evaluation["examples"]:
        item = str(example["item"])
        out += [
            f"### {_md(_name(item, titles))}",
            "",
            f"{_md(example.get('bucket', ''))}, {int(example.get('popularity', 0)):,} engagements",
            "",
        ]
        lists = [(example.get("lists", {}).get(s) or [])[:EXAMPLE_ROWS] for s in sources]
        depth = max((len(ranked) for ranked in lists), default=0)
        out += _md_table(
            ["#", *(_md(s) for s in sources)],
            [
                [
                    str(rank + 1),
                    *(
                        _md(_name(str(ranked[rank][0]), titles)) if rank < len(ranked) else ""
                        for ranked in lists
                    ),
                ]
                for rank in range(depth)
            ],
        )
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
