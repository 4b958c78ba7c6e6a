"""Inline SVG charts for the report: pure functions from numbers to markup, no JavaScript.

Every text that reaches the SVG is escaped here (labels come from findings files), and every
chart carries a <title> and text labels so it reads in print and in a screen reader.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Colours chosen to stay distinguishable in greyscale print (dark fail, light pass).
COLOURS = {"pass": "#2e7d32", "fail": "#b71c1c", "error": "#ef6c00", "waived": "#0277bd", "not_applicable": "#9e9e9e"}
STATUSES = tuple(COLOURS)


@dataclass(frozen=True)
class Bar:
    label: str
    counts: dict[str, int]  # status -> number of findings


@dataclass(frozen=True)
class Point:
    label: str  # run id
    value: float | None  # pass rate 0..1, None when nothing was evaluated


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 12, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-family="sans-serif"{extra}>{escape(text)}</text>')


def bar_chart(bars: list[Bar], chart_id: str, title: str, width: int = 720) -> Markup:
    """Horizontal stacked bars, one per label, segments per status, the count written on each segment."""
    row, top, label_width, legend = 22, 28, 80, 20
    plot = width - label_width - 50
    height = top + row * len(bars) + legend + 10
    largest = max([sum(bar.counts.get(s, 0) for s in STATUSES) for bar in bars] + [1])
    parts = [f'<svg id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="{escape(chart_id)}-title">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>']
    x = float(label_width)
    for status in STATUSES:  # legend on top
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{COLOURS[status]}"/>')
        parts.append(_text(x + 16, 16, status.replace("_", " "), size=11))
        x += 110
    for index, bar in enumerate(bars):
        y = top + index * row
        parts.append(_text(label_width - 6, y + 15, bar.label, anchor="end", size=11))
        x = float(label_width)
        for status in STATUSES:
            count = bar.counts.get(status, 0)
            if not count:
                continue
            w = plot * count / largest
            parts.append(f'<rect class="bar bar-{status}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
                         f'fill="{COLOURS[status]}"><title>{escape(f"{bar.label}: {count} {status}")}</title></rect>')
            if w >= 14:
                parts.append(_text(x + w / 2, y + 15, str(count), anchor="middle", size=10, extra=' fill="#fff"'))
            x += w
        total = sum(bar.counts.get(s, 0) for s in STATUSES)
        parts.append(_text(x + 4, y + 15, str(total), size=10, extra=' fill="#555"'))
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(points: list[Point], chart_id: str, title: str, width: int = 720, height: int = 220) -> Markup:
    """Pass rate (0..100 %) over runs, oldest left; runs with nothing evaluated leave a gap."""
    left, right, top, bottom = 48, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [f'<svg id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="{escape(chart_id)}-title">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>']
    for percent in (0, 25, 50, 75, 100):  # grid
        y = top + plot_h * (1 - percent / 100)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(_text(left - 6, y + 4, f"{percent}%", anchor="end", size=10))
    step = plot_w / max(len(points) - 1, 1)
    coords: list[tuple[float, float] | None] = []
    for index, point in enumerate(points):
        x = left + (step * index if len(points) > 1 else plot_w / 2)
        coords.append(None if point.value is None else (x, top + plot_h * (1 - point.value)))
        if len(points) <= 12 or index in (0, len(points) - 1):
            parts.append(_text(x, height - bottom + 16, point.label[:16], anchor="middle", size=9))
    segment: list[str] = []
    for coord in coords + [None]:  # a None closes the current segment
        if coord is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{" ".join(segment)}"/>')
            segment = []
        else:
            segment.append(f"{coord[0]:.1f},{coord[1]:.1f}")
    for point, coord in zip(points, coords, strict=True):
        if coord is not None:
            label = f"{point.label}: {point.value * 100:.1f}% pass" if point.value is not None else point.label
            parts.append(f'<circle cx="{coord[0]:.1f}" cy="{coord[1]:.1f}" r="4" fill="#1565c0"><title>{escape(label)}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
