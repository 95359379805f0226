"""Small self-contained SVG charts (line and grouped bars) for the run report: no JavaScript, no fonts or
images from the network, every label escaped."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    width: int = 560
    height: int = 300


_MARGIN = {"left": 58, "right": 140, "top": 34, "bottom": 46}
# Inside each <svg>, so a chart copied out of the page keeps its looks.
_SVG_CSS = (
    "text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    ".chart-title{font-weight:600;font-size:14px;fill:#1e293b}"
    ".grid{stroke:#e2e8f0}.axis{stroke:#94a3b8}.tick,.legend{font-size:12px;fill:#475569}"
    ".label{font-size:12px;fill:#64748b}.marker{stroke:#dc2626;stroke-dasharray:4 3}"
    ".marker-label{font-size:12px;fill:#dc2626;font-weight:600}"
    ".map-label{font-size:11px;fill:#0f172a;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px}"
)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.3f}"


def _svg_open(chart: Chart) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{chart.width}" '
        f'height="{chart.height}" viewBox="0 0 {chart.width} {chart.height}" role="img" '
        f'aria-label="{html.escape(chart.title)}"><title>{html.escape(chart.title)}</title>'
        f"<style>{_SVG_CSS}</style>"
        f'<text x="{_MARGIN["left"]}" y="18" class="chart-title">{html.escape(chart.title)}</text>'
    )


def _y_gridlines(y_ticks, py, left: float, plot_w: float) -> list[str]:
    """A labelled horizontal gridline per y tick; `py` maps a value to its pixel row."""
    return [
        f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" class="grid"/>'
        f'<text x="{left - 6}" y="{py(y) + 4:.1f}" class="tick" text-anchor="end">{_tick_label(y)}</text>'
        for y in y_ticks
    ]


def line_chart(
    chart: Chart,
    series: Sequence[Series],
    x_ticks: Sequence[float] | None = None,
    y_from_zero: bool = True,
    marker: tuple[float, str] | None = None,
) -> str:
    """An inline SVG line chart with axes, gridlines, a legend and an optional vertical marker (x, label)."""
    xs = [x for s in series for x, _ in s.points] + ([marker[0]] if marker else [])
    ys = [y for s in series for _, y in s.points]
    if not xs or not ys:
        return f'<p class="note">{html.escape(chart.title)}: nothing to draw.</p>'
    x_ticks = list(x_ticks) if x_ticks else _nice_ticks(min(xs), max(xs))
    x_low, x_high = min([*x_ticks, *xs]), max([*x_ticks, *xs])
    y_ticks = _nice_ticks(0.0 if y_from_zero else min(ys), max(ys))
    y_low, y_high = y_ticks[0], y_ticks[-1]
    left, top = _MARGIN["left"], _MARGIN["top"]
    plot_w = chart.width - left - _MARGIN["right"]
    plot_h = chart.height - top - _MARGIN["bottom"]

    def px(x: float) -> float:
        return left + (0.5 if x_high == x_low else (x - x_low) / (x_high - x_low)) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    parts = [_svg_open(chart), *_y_gridlines(y_ticks, py, left, plot_w)]
    for x in x_ticks:
        parts.append(
            f'<text x="{px(x):.1f}" y="{top + plot_h + 16}" class="tick" text-anchor="middle">'
            f"{_tick_label(x)}</text>"
        )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" class="axis"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{chart.height - 8}" class="label" text-anchor="middle">'
        f"{html.escape(chart.x_label)}</text>"
        f'<text x="14" y="{top + plot_h / 2:.1f}" class="label" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{html.escape(chart.y_label)}</text>'
    )
    if marker is not None:
        x, label = marker
        parts.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + plot_h}" class="marker"/>'
            f'<text x="{px(x) + 4:.1f}" y="{top + 12}" class="marker-label">{html.escape(label)}</text>'
        )
    for index, s in enumerate(series):
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{s.colour}" stroke-width="2.5"{dash}/>'
        )
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{s.colour}">'
            f"<title>{html.escape(s.name)}: {_tick_label(x)} -> {y:.4f}</title></circle>"
            for x, y in s.points
        ]
        legend_y = top + 8 + index * 20
        parts.append(
            f'<line x1="{left + plot_w + 14}" x2="{left + plot_w + 34}" y1="{legend_y}" y2="{legend_y}" '
            f'stroke="{s.colour}" stroke-width="3"{dash}/>'
            f'<text x="{left + plot_w + 40}" y="{legend_y + 4}" class="legend">{html.escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(chart: Chart, groups: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]]) -> str:
    """Grouped vertical bars: one group per label in `groups`, one bar per (name, colour, values) series."""
    values = [v for _, _, vs in series for v in vs]
    if not groups or not values:
        return f'<p class="note">{html.escape(chart.title)}: nothing to draw.</p>'
    y_ticks = _nice_ticks(0.0, max(values) or 1.0)
    y_high = y_ticks[-1]
    left, top = _MARGIN["left"], _MARGIN["top"]
    plot_w = chart.width - left - _MARGIN["right"]
    plot_h = chart.height - top - _MARGIN["bottom"]
    group_w = plot_w / len(groups)
    bar_w = group_w * 0.8 / max(len(series), 1)

    def py(y: float) -> float:
        return top + plot_h - y / y_high * plot_h

    parts = [_svg_open(chart), *_y_gridlines(y_ticks, py, left, plot_w)]
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        parts.append(
            f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{top + plot_h + 16}" class="tick" '
            f'text-anchor="middle">{html.escape(group)}</text>'
        )
        for s, (name, colour, vs) in enumerate(series):
            value = vs[g]
            parts.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{py(value):.1f}" width="{bar_w * 0.92:.1f}" '
                f'height="{top + plot_h - py(value):.1f}" fill="{colour}">'
                f"<title>{html.escape(name)}, {html.escape(group)}: {value:.4f}</title></rect>"
            )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{chart.height - 8}" class="label" text-anchor="middle">'
        f"{html.escape(chart.x_label)}</text>"
        f'<text x="14" y="{top + plot_h / 2:.1f}" class="label" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{html.escape(chart.y_label)}</text>'
    )
    for index, (name, colour, _) in enumerate(series):
        legend_y = top + 8 + index * 20
        parts.append(
            f'<rect x="{left + plot_w + 14}" y="{legend_y - 6}" width="14" height="12" fill="{colour}"/>'
            f'<text x="{left + plot_w + 34}" y="{legend_y + 4}" class="legend">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class PointGroup:
    """Points of one colour: (x, y, tooltip) each."""

    name: str
    colour: str
    points: Sequence[tuple[float, float, str]]


def scatter_chart(
    chart: Chart, groups: Sequence[PointGroup], labels: Sequence[tuple[float, float, str]] = ()
) -> str:
    """An inline SVG scatter plot with the same scale on both axes (a distance on the page is a distance in
    the data), a legend with each group's count, and labelled rings around the (x, y, text) `labels`. Groups
    draw in order, so the last one is on top (and first in the legend)."""
    xs = [x for g in groups for x, _, _ in g.points] + [x for x, _, _ in labels]
    ys = [y for g in groups for _, y, _ in g.points] + [y for _, y, _ in labels]
    if not xs:
        return f'<p class="note">{html.escape(chart.title)}: nothing to draw.</p>'
    left, top = _MARGIN["left"] - 30, _MARGIN["top"]
    plot_w = chart.width - left - _MARGIN["right"]
    plot_h = chart.height - top - _MARGIN["bottom"]
    x_mid, y_mid = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    scale = 0.94 * min(plot_w, plot_h) / span

    def px(x: float) -> float:
        return left + plot_w / 2 + (x - x_mid) * scale

    def py(y: float) -> float:
        return top + plot_h / 2 - (y - y_mid) * scale

    parts = [
        _svg_open(chart),
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" class="axis"/>',
        f'<text x="{left + plot_w / 2:.1f}" y="{chart.height - 8}" class="label" text-anchor="middle">'
        f"{html.escape(chart.x_label)}</text>",
        f'<text x="{left - 8}" y="{top + plot_h / 2:.1f}" class="label" text-anchor="middle" '
        f'transform="rotate(-90 {left - 8} {top + plot_h / 2:.1f})">{html.escape(chart.y_label)}</text>',
    ]
    for group in groups:
        parts.append(f'<g fill="{group.colour}" fill-opacity="0.6">')
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5"><title>{html.escape(tip)}</title></circle>'
            for x, y, tip in group.points
        ]
        parts.append("</g>")
    for x, y, text in labels:
        anchor = "end" if px(x) > left + plot_w * 0.7 else "start"
        dx = -8 if anchor == "end" else 8
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5.5" fill="none" stroke="#0f172a" '
            'stroke-width="1.5"/>'
            f'<text x="{px(x) + dx:.1f}" y="{py(y) - 6:.1f}" class="map-label" text-anchor="{anchor}">'
            f"{html.escape(text)}</text>"
        )
    for index, group in enumerate(reversed(groups)):  # the top-most group first
        legend_y = top + 8 + index * 20
        parts.append(
            f'<circle cx="{left + plot_w + 20}" cy="{legend_y}" r="5" fill="{group.colour}"/>'
            f'<text x="{left + plot_w + 32}" y="{legend_y + 4}" class="legend">'
            f"{html.escape(group.name)} ({len(group.points):,})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
