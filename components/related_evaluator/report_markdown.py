"""The run report as Markdown (report.md): the figures of report_view.py as tables, no charts; the loss as a
sparkline and a table. Every id and title is escaped: they come from user data."""

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
from components.related_evaluator.stability_report import stability_markdown

_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """One block character per value, lowest to highest: a loss curve that fits in a Markdown cell."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    return "".join(_SPARK[0 if span == 0 else round((v - low) / span * (len(_SPARK) - 1))] for v in values)


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
        f"**{_md(best)}** {verdict_lead(evaluation)}: test HR@10 **{format_metric(best_hr)}**"
        + (f" vs {versus}" if versus else "")
        + ". "
        + noise_note(evaluation),
        *(["", coverage_text(evaluation) + "."] if coverage_text(evaluation) else []),
        "",
        *_provenance_markdown(evaluation),
        "## Training loss",
        "",
    ]
    series = loss_series(history)
    if series:
        for key, values in series.items():
            out.append(
                f"- {key}: `{sparkline(values)}` {format_metric(values[0])} -> {format_metric(values[-1])}"
            )
        out += ["", read_loss_curves(history)]
        epochs = max(len(v) for v in series.values())
        table = [
            [str(e + 1), *(format_metric(v[e]) if e < len(v) else "" for v in series.values())]
            for e in range(epochs)
        ]
        out += ["", *_md_table(["epoch", *series], table)]
    else:
        out.append(f"_{NO_HISTORY_NOTE}_")

    out += ["", f"## HR@K ({REPORTED_SPLIT})", ""]
    test = evaluation["splits"][REPORTED_SPLIT]
    out += _md_table(
        ["source", *(f"HR@{k}" for k in ks)],
        [[_md(s), *(format_metric(float(test[s]["hit_rate"][k])) for k in ks)] for s in sources],
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
                    format_metric(m.get("answered")),
                    *(
                        format_metric(float(m[family][k]))
                        for family in ("hit_rate", "mrr", "coverage")
                        for k in ks
                    ),
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
            f"{format_metric(float(b.get('hit_rate', {}).get(HEADLINE_K, 0.0)))} / "
            f"{format_metric(float(b.get('mrr', {}).get(HEADLINE_K, 0.0)))}"
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
        f"## Blend weight sweep ({tuned_on(blend)})",
        "",
        f"Chosen weight: **{float(blend['weight']):g}** (rrf_k {float(blend.get('rrf_k', 0)):g}). "
        f"{rrf_k_summary(blend)} {rerank_summary(blend)}",
        "",
    ]
    sweep_rows = []
    for s in sorted(blend["sweep"], key=lambda s: s["weight"]):
        chosen = math.isclose(float(s["weight"]), float(blend["weight"]))
        weight = f"**{float(s['weight']):g}** (chosen)" if chosen else f"{float(s['weight']):g}"
        sweep_rows.append([weight, format_metric(s["hit_rate_at_10"]), format_metric(s["mrr_at_10"])])
    on = tuned_on(blend)
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
            f"### {_md(item_label(item, titles))}",
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
                        _md(item_label(str(ranked[rank][0]), titles)) if rank < len(ranked) else ""
                        for ranked in lists
                    ),
                ]
                for rank in range(depth)
            ],
        )
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
