"""Server-side SVG charts: plain markup, no script, no CDN, readable without JavaScript.

Each function lays a chart out as a `Chart`: its title and the SVG elements (tag,
attributes, text) in drawing order. The page's template (`templates/chart.html`) writes
them out, escaping every attribute and text like the rest of the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

W, H = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 48, 16, 16, 40
COLORS = {"queued": "#9aa5b1", "in_progress": "#3b82f6", "waiting_for_customer": "#f59e0b",
          "paused": "#a855f7", "done": "#22c55e"}


@dataclass(frozen=True)
class Element:
    tag: str
    attrs: dict[str, str]
    text: str | None = None
    title: str | None = None  # a tooltip (`<title>` child)


@dataclass
class Chart:
    title: str
    elements: list[Element] = field(default_factory=list)
    width: int = W
    height: int = H


def _el(tag: str, text: str | None = None, title: str | None = None, **attrs: object
        ) -> Element:
    # keyword names stand for SVG attributes: text_anchor -> text-anchor
    return Element(tag, {k.replace("_", "-"): str(v) for k, v in attrs.items()}, text, title)


def _frame(title: str, body: list[Element], legend: Sequence[Element] = ()) -> Chart:
    return Chart(title, [*body, *legend])


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
                 100000, 200000, 500000, 1000000, 2000000, 5000000):
        if v <= step * 4:
            return float(step * 4)
    return v


def _axes(ymax: float, fmt=lambda v: f"{v:g}") -> list[Element]:
    x0, x1, y0, y1 = PAD_L, W - PAD_R, H - PAD_B, PAD_T
    out = [_el("line", x1=x0, y1=y0, x2=x1, y2=y0, stroke="#555"),
           _el("line", x1=x0, y1=y0, x2=x0, y2=y1, stroke="#555")]
    for i in range(5):
        v = ymax * i / 4
        y = y0 - (y0 - y1) * i / 4
        out.append(_el("line", x1=x0, y1=f"{y:.1f}", x2=x1, y2=f"{y:.1f}", stroke="#eee"))
        out.append(_el("text", fmt(v), x=x0 - 4, y=f"{y + 4:.1f}", text_anchor="end",
                       font_size=10))
    return out


def _x(i: int, n: int) -> float:
    span = W - PAD_L - PAD_R
    return PAD_L + (span * (i + 0.5) / n if n else 0)


def _y(v: float, ymax: float) -> float:
    return H - PAD_B - (H - PAD_B - PAD_T) * (v / ymax if ymax else 0)


def _xlabels(labels: Sequence[str], every: int = 1) -> list[Element]:
    n = len(labels)
    return [_el("text", lab, x=f"{_x(i, n):.1f}", y=H - PAD_B + 14, text_anchor="middle",
                font_size=10)
            for i, lab in enumerate(labels) if i % every == 0]


def empty(title: str, message: str) -> Chart:
    return _frame(title, [_el("text", message, x=W / 2, y=H / 2, text_anchor="middle",
                              font_size=13, fill="#777")])


def line(title: str, labels: Sequence[str], values: Sequence[float], color: str = "#3b82f6",
         empty_text: str = "no data") -> Chart:
    if not values:
        return empty(title, empty_text)
    ymax = _nice_max(max(values))
    n = len(values)
    pts = " ".join(f"{_x(i, n):.1f},{_y(v, ymax):.1f}" for i, v in enumerate(values))
    dots = [_el("circle", title=f"{labels[i]}: {v:g}", cx=f"{_x(i, n):.1f}",
                cy=f"{_y(v, ymax):.1f}", r=2.5, fill=color) for i, v in enumerate(values)]
    polyline = _el("polyline", **{"class": "series"}, fill="none", stroke=color,
                   stroke_width=2, points=pts)
    return _frame(title, [*_axes(ymax), polyline, *dots, *_xlabels(labels, max(1, n // 8))])


def bars(title: str, labels: Sequence[str], values: Sequence[float], color: str = "#3b82f6",
         fmt=lambda v: f"{v:g}", empty_text: str = "no data") -> Chart:
    if not values or not any(values):
        return empty(title, empty_text)
    ymax = _nice_max(max(values))
    n = len(values)
    bw = (W - PAD_L - PAD_R) / n * 0.7
    rects = [_el("rect", title=f"{labels[i]}: {fmt(v)}", **{"class": "bar"},
                 x=f"{_x(i, n) - bw / 2:.1f}", y=f"{_y(v, ymax):.1f}", width=f"{bw:.1f}",
                 height=f"{H - PAD_B - _y(v, ymax):.1f}", fill=color)
             for i, v in enumerate(values) if v]
    return _frame(title, [*_axes(ymax, fmt), *rects, *_xlabels(labels, max(1, n // 10))])


def stacked_area(title: str, labels: Sequence[str], series: dict[str, Sequence[float]],
                 names: dict[str, str], empty_text: str = "no data") -> Chart:
    """Cumulative flow: categories stacked bottom (done) to top (queued)."""
    keys = [k for k in ("done", "paused", "waiting_for_customer", "in_progress", "queued")
            if k in series]
    n = len(labels)
    if not n or not any(any(series[k]) for k in keys):
        return empty(title, empty_text)
    totals = [sum(series[k][i] for k in keys) for i in range(n)]
    ymax = _nice_max(max(totals))
    base = [0.0] * n
    shapes = []
    for k in keys:
        top = [base[i] + series[k][i] for i in range(n)]
        upper = [f"{_x(i, n):.1f},{_y(top[i], ymax):.1f}" for i in range(n)]
        lower = [f"{_x(i, n):.1f},{_y(base[i], ymax):.1f}" for i in reversed(range(n))]
        shapes.append(_el("polygon", title=names.get(k, k), **{"class": "area"},
                          points=" ".join(upper + lower), fill=COLORS.get(k, "#888"),
                          fill_opacity=0.85))
        base = top
    legend = []
    for j, k in enumerate(reversed(keys)):
        legend += [_el("rect", x=PAD_L + 8 + j * 120, y=PAD_T, width=10, height=10,
                       fill=COLORS.get(k, "#888")),
                   _el("text", names.get(k, k), x=PAD_L + 22 + j * 120, y=PAD_T + 9,
                       font_size=10)]
    return _frame(title, [*_axes(ymax), *shapes, *_xlabels(labels, max(1, n // 8))], legend)


def scatter(title: str, points: Sequence[tuple[float, float, str]],
            lines: dict[str, float | None], fmt=lambda v: f"{v:g}",
            empty_text: str = "no data", xlabels: Sequence[str] = ()) -> Chart:
    """Points (x in [0, 1] of the period, y value, label) with horizontal percentile lines."""
    if not points:
        return empty(title, empty_text)
    ymax = _nice_max(max([p[1] for p in points] + [v for v in lines.values() if v]))
    span = W - PAD_L - PAD_R
    dots = [_el("circle", title=f"{lab}: {fmt(y)}", **{"class": "point"},
                cx=f"{PAD_L + span * x:.1f}", cy=f"{_y(y, ymax):.1f}", r=4, fill="#3b82f6",
                fill_opacity=0.75) for x, y, lab in points]
    marks = []
    for name, v in lines.items():
        if v is None:
            continue
        y = _y(v, ymax)
        marks += [_el("line", **{"class": "percentile"}, x1=PAD_L, x2=W - PAD_R,
                      y1=f"{y:.1f}", y2=f"{y:.1f}", stroke="#ef4444", stroke_dasharray="4 3"),
                  _el("text", f"{name} {fmt(v)}", x=W - PAD_R - 2, y=f"{y - 3:.1f}",
                      text_anchor="end", font_size=10, fill="#ef4444")]
    ticks = [_el("text", lab, x=f"{PAD_L + span * i / max(1, len(xlabels) - 1):.1f}",
                 y=H - PAD_B + 14, text_anchor="middle", font_size=10)
             for i, lab in enumerate(xlabels)]
    return _frame(title, [*_axes(ymax, fmt), *dots, *marks, *ticks])


def hbars(title: str, labels: Sequence[str], values: Sequence[float], fmt=lambda v: f"{v:g}",
          empty_text: str = "no data") -> Chart:
    """Horizontal bars: where work stalls (mean time per column)."""
    if not values or not any(values):
        return empty(title, empty_text)
    vmax = max(values)
    n = len(values)
    row = (H - PAD_T - 8) / n
    left = 150
    out = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = PAD_T + i * row
        w = (W - left - 80) * (v / vmax if vmax else 0)
        out += [_el("text", lab, x=left - 6, y=f"{y + row / 2 + 4:.1f}", text_anchor="end",
                    font_size=11),
                _el("rect", title=f"{lab}: {fmt(v)}", **{"class": "bar"}, x=left,
                    y=f"{y + row * 0.15:.1f}", width=f"{w:.1f}", height=f"{row * 0.7:.1f}",
                    fill="#f59e0b"),
                _el("text", fmt(v), x=f"{left + w + 4:.1f}", y=f"{y + row / 2 + 4:.1f}",
                    font_size=11)]
    return _frame(title, out)
