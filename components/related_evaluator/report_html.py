"""The run report as one self-contained HTML page (report.html): report_view.py's figures as cards, tables and
inline SVG charts (svg_charts.py), with its own CSS.

No JavaScript, no fonts or images from the network, so the page opens from a file anywhere, including a bucket
viewed offline. Every id and title is escaped: they come from user data.

Over 400 lines because it is one page: its CSS and a short function per section, each read beside the others
when the page's look changes; the figures themselves are computed in report_view.py.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from components.related_evaluator.loss_reading import read_loss_curves
from components.related_evaluator.report_view import (
    BUCKETS,
    EXAMPLE_ROWS,
    HEADLINE_K,
    NO_HISTORY_NOTE,
    NO_PROVENANCE_NOTE,
    PAIRED_NOTE,
    REPORTED_SPLIT,
    SPLITS,
    check_evaluation,
    coverage_text,
    embedding_map_caption,
    format_metric,
    headline,
    headline_hit_rate,
    item_label,
    loss_series,
    noise_note,
    paired_rows,
    provenance_rows,
    provenance_settings,
    rerank_summary,
    rrf_k_summary,
    score_scale,
    tuned_on,
    verdict_lead,
    versus_parts,
)
from components.related_evaluator.stability_report import stability_html
from components.related_evaluator.svg_charts import (
    Chart,
    PointGroup,
    Series,
    bar_chart,
    line_chart,
    scatter_chart,
)

_PALETTE = {
    "pin2vec": "#2563eb",
    "pin2vec_similar": "#7c3aed",
    "cooccurrence": "#d97706",
    "board": "#dc2626",
    "blend": "#059669",
}
_OTHER_COLOURS = ("#7c3aed", "#db2777", "#0891b2", "#65a30d", "#475569")


def _colour(source: str, sources: Sequence[str]) -> str:
    if source in _PALETTE:
        return _PALETTE[source]
    others = [s for s in sources if s not in _PALETTE]
    return _OTHER_COLOURS[others.index(source) % len(_OTHER_COLOURS)] if source in others else "#475569"


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
            f'<div class="v">{format_metric(headline_hit_rate(test, source))}</div>'
            f'<div class="k">MRR@10 {format_metric(test[source]["mrr"][HEADLINE_K])} · coverage@10 '
            f"{format_metric(test[source]['coverage'][HEADLINE_K])}</div></div>"
        )
    versus = "; ".join(
        f"{html.escape(source)} {html.escape(text)}" for source, text in versus_parts(evaluation)
    )
    return (
        f'<p class="verdict"><b>{html.escape(best)}</b> {verdict_lead(evaluation)}: '
        f"test HR@10 <b>{format_metric(best_hr)}</b>" + (f" vs {versus}" if versus else "") + ". "
        f"{html.escape(noise_note(evaluation))}</p>"
        f'<div class="cards">{"".join(cards)}</div>'
    )


def _loss_html(history: Mapping | None) -> str:
    series = loss_series(history)
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
            f"Blend weight sweep ({tuned_on(blend)})", "weight of Pin2Vec (0 = co-occurrence only)", "metric"
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
                f"<td{' class=top' if i in best[(family, k)] else ''}>"
                f"{format_metric(float(metrics[family][k]))}</td>"
                for family, _ in columns
                for k in ks
            )
            rows.append(
                f'<tr><td class="l">{html.escape(split)}</td>'
                f'<td class="l">{_source_cell(source, sources)}</td>'
                f"<td>{int(metrics.get('queries', 0))}</td><td>{format_metric(metrics.get('answered'))}</td>"
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
            f"<td{' class=top' if i in best_hr else ''}>{format_metric(hr)}</td>"
            f"<td{' class=top' if i in best_mrr else ''}>{format_metric(mrr)}</td>"
            for i, (hr, mrr) in enumerate(zip(hrs, mrrs, strict=True))
        )
        rows.append(f'<tr><td class="l">{bucket}</td><td>{queries}</td>{cells}</tr>')
    return (
        f'<table><tr><th class="l" rowspan="2">bucket ({html.escape(split)})</th><th rowspan="2">queries</th>'
        f"{head}</tr><tr>{sub}</tr>{''.join(rows)}</table>"
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
            f"{' ← chosen' if chosen else ''}</td><td>{format_metric(s['hit_rate_at_10'])}</td>"
            f"<td>{format_metric(s['mrr_at_10'])}</td></tr>"
        )
    on = html.escape(tuned_on(blend))
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
                f"<li>{html.escape(item_label(str(c), titles))} "
                f'<span class="score">{float(score):.3g}</span></li>'
                for c, score in ranked[:EXAMPLE_ROWS]
            )
            unit = html.escape(score_scale(source, evaluation).unit)
            lists.append(
                f'<div class="src">{_source_cell(source, sources)} '
                f'<span class="score">scores: {unit}</span></div>'
                + (f"<ol>{entries}</ol>" if entries else '<p class="note">no candidates</p>')
            )
        blocks.append(
            f'<div class="example"><h3>{html.escape(item_label(item, titles))}</h3>'
            f'<div class="k">{html.escape(str(example.get("bucket", "")))} · '
            f"{int(example.get('popularity', 0)):,} engagements</div>{''.join(lists)}</div>"
        )
    return f'<div class="examples">{"".join(blocks)}</div>'


BUCKET_COLOURS = {"head": "#dc2626", "torso": "#d97706", "tail": "#2563eb"}
MAP_LABEL_CHARS = 28  # a longer title is cut on the map (the tooltip keeps it whole)


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
                points.append((float(x), float(y), f"{item_label(str(item), titles)} · {names[b]}"))
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
        f'<p class="reading">{html.escape(read_loss_curves(history))}</p>' if loss_series(history) else "",
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
        f"weight is chosen on the {html.escape(tuned_on(blend))} split: <b>{float(blend['weight']):g}</b>. "
        f"{html.escape(rrf_k_summary(blend))} {html.escape(rerank_summary(blend))}</p>",
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
