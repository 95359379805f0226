"""The run report's neighbour-stability section (evaluation.json's `stability`) as HTML and as Markdown: how
much of each related list the served version shows survives in this candidate, overall and by popularity."""

from __future__ import annotations

import html
from collections.abc import Mapping

from components.related_evaluator.metrics_lib import BUCKETS

TITLE = "Neighbour stability against the served version"
NOTE = (
    "overlap@10: the share of an item's first 10 related items in the served version that this candidate "
    "still shows (divided by the shorter list's length when one has fewer than 10), over items present in "
    "both. Low figures mean lists users already know would reshuffle; `--min-neighbour-overlap` refuses such "
    "a push."
)


def _figure(value) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def stability_rows(evaluation: Mapping) -> list[list[str]]:
    """[what, served version, all items, head, torso, tail, items compared] rows: the headline, then each
    source against its own served version; empty when nothing was measured."""
    stability = evaluation.get("stability") or {}
    if stability.get("overlap_at_10") is None:
        return []

    def row(label: str, figure: Mapping) -> list[str]:
        buckets = figure.get("buckets", {})
        return [
            label,
            str(figure.get("served_version", "")),
            _figure(figure.get("overlap_at_10")),
            *(_figure(buckets.get(b, {}).get("overlap_at_10")) for b in BUCKETS),
            str(figure.get("items", 0)),
        ]

    served, source = stability.get("served_source") or stability["source"], stability["source"]
    headline = source if served == source else f"{source} (serving now: {served})"
    rows = [row(f"default: {headline}", stability)]
    rows += [row(name, figure) for name, figure in stability.get("sources", {}).items()]
    return rows


def _header() -> list[str]:
    return ["lists", "served version", "all items", *BUCKETS, "items compared"]


def stability_html(evaluation: Mapping) -> str:
    stability = evaluation.get("stability")
    if stability is None:  # an evaluation written before stability was measured
        return ""
    rows = stability_rows(evaluation)
    if not rows:
        reason = stability.get("reason") or "nothing to compare with"
        return f'<h2>{TITLE}</h2><p class="note">Not measured: {html.escape(reason)}.</p>'
    head = "".join(
        f"<th{' class=l' if i == 0 else ''}>{html.escape(h)}</th>" for i, h in enumerate(_header())
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=l' if i == 0 else ''}>{html.escape(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<h2>{TITLE}</h2><table><tr>{head}</tr>{body}</table><p class="note">{html.escape(NOTE)}</p>'


def stability_markdown(evaluation: Mapping) -> list[str]:
    stability = evaluation.get("stability")
    if stability is None:
        return []
    rows = stability_rows(evaluation)
    if not rows:
        return [
            "",
            f"## {TITLE}",
            "",
            f"Not measured: {stability.get('reason') or 'nothing to compare with'}.",
        ]
    escape = lambda text: html.escape(text).replace("|", "\\|")  # noqa: E731
    lines = ["", f"## {TITLE}", "", "| " + " | ".join(_header()) + " |", "|" + "---|" * len(_header())]
    lines += ["| " + " | ".join(escape(c) for c in r) + " |" for r in rows]
    return [*lines, "", NOTE]
