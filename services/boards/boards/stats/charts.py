"""Server-side SVG charts: plain markup, no script, no CDN, readable without JavaScript."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

W, H = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 48, 16, 16, 40
COLORS = {"queued": "#9aa5b1", "in_progress": "#3b82f6", "waiting_for_customer": "#f59e0b",
          "paused": "#a855f7", "done": "#22c55e"}


def _frame(title: str, body: str, legend: str = "") -> str:
    return (f'<svg class="chart" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{escape(title)}</title>{body}{legend}</svg>")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
                 100000, 200000, 500000, 1000000, 2000000, 5000000):
        if v <= step * 4:
            return float(step * 4)
    return v


def _axes(ymax: float, fmt=lambda v: f"{v:g}") -> str:
    x0, x1, y0, y1 = PAD_L, W - PAD_R, H - PAD_B, PAD_T
    out = [f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#555"/>',
           f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#555"/>']
    for i in range(5):
        v = ymax * i / 4
        y = y0 - (y0 - y1) * i / 4
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="10">{escape(fmt(v))}</text>')
    return "".join(out)


def _x(i: int, n: int) -> float:
    span = W - PAD_L - PAD_R
    return PAD_L + (span * (i + 0.5) / n if n else 0)


def _y(v: float, ymax: float) -> float:
    return H - PAD_B - (H - PAD_B - PAD_T) * (v / ymax if ymax else 0)


def _xlabels(labels: Sequence[str], every: int = 1) -> str:
    n = len(labels)
    return "".join(f'<text x="{_x(i, n):.1f}" y="{H - PAD_B + 14}" text-anchor="middle" '
                   f'font-size="10">{escape(lab)}</text>'
                   for i, lab in enumerate(labels) if i % every == 0)


def empty(title: str, message: str) -> str:
    return _frame(title, f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" '
                         f'font-size="13" fill="#777">{escape(message)}</text>')


def line(title: str, labels: Sequence[str], values: Sequence[float], color: str = "#3b82f6",
         empty_text: str = "no data") -> str:
    if not values:
        return empty(title, empty_text)
    ymax = _nice_max(max(values))
    n = len(values)
    pts = " ".join(f"{_x(i, n):.1f},{_y(v, ymax):.1f}" for i, v in enumerate(values))
    dots = "".join(f'<circle cx="{_x(i, n):.1f}" cy="{_y(v, ymax):.1f}" r="2.5" fill="{color}">'
                   f"<title>{escape(labels[i])}: {v:g}</title></circle>"
                   for i, v in enumerate(values))
    body = (_axes(ymax) + f'<polyline class="series" fill="none" stroke="{color}" '
            f'stroke-width="2" points="{pts}"/>' + dots + _xlabels(labels, max(1, n // 8)))
    return _frame(title, body)


def bars(title: str, labels: Sequence[str], values: Sequence[float], color: str = "#3b82f6",
         fmt=lambda v: f"{v:g}", empty_text: str = "no data") -> str:
    if not values or not any(values):
        return empty(title, empty_text)
    ymax = _nice_max(max(values))
    n = len(values)
    bw = (W - PAD_L - PAD_R) / n * 0.7
    rects = "".join(
        f'<rect class="bar" x="{_x(i, n) - bw / 2:.1f}" y="{_y(v, ymax):.1f}" width="{bw:.1f}" '
        f'height="{H - PAD_B - _y(v, ymax):.1f}" fill="{color}"><title>{escape(labels[i])}: '
        f"{escape(fmt(v))}</title></rect>" for i, v in enumerate(values) if v)
    return _frame(title, _axes(ymax, fmt) + rects + _xlabels(labels, max(1, n // 10)))


def stacked_area(title: str, labels: Sequence[str], series: dict[str, Sequence[float]],
                 names: dict[str, str], empty_text: str = "no data") -> str:
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
        shapes.append(f'<polygon class="area" points="{" ".join(upper + lower)}" '
                      f'fill="{COLORS.get(k, "#888")}" fill-opacity="0.85">'
                      f"<title>{escape(names.get(k, k))}</title></polygon>")
        base = top
    legend = "".join(
        f'<rect x="{PAD_L + 8 + j * 120}" y="{PAD_T}" width="10" height="10" '
        f'fill="{COLORS.get(k, "#888")}"/><text x="{PAD_L + 22 + j * 120}" y="{PAD_T + 9}" '
        f'font-size="10">{escape(names.get(k, k))}</text>' for j, k in enumerate(reversed(keys)))
    return _frame(title, _axes(ymax) + "".join(shapes) + _xlabels(labels, max(1, n // 8)),
                  legend)


def scatter(title: str, points: Sequence[tuple[float, float, str]],
            lines: dict[str, float | None], fmt=lambda v: f"{v:g}",
            empty_text: str = "no data", xlabels: Sequence[str] = ()) -> str:
    """Points (x in [0, 1] of the period, y value, label) with horizontal percentile lines."""
    if not points:
        return empty(title, empty_text)
    ymax = _nice_max(max([p[1] for p in points] + [v for v in lines.values() if v]))
    span = W - PAD_L - PAD_R
    dots = "".join(f'<circle class="point" cx="{PAD_L + span * x:.1f}" cy="{_y(y, ymax):.1f}" '
                   f'r="4" fill="#3b82f6" fill-opacity="0.75"><title>{escape(lab)}: '
                   f"{escape(fmt(y))}</title></circle>" for x, y, lab in points)
    marks = []
    for name, v in lines.items():
        if v is None:
            continue
        y = _y(v, ymax)
        marks.append(f'<line class="percentile" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke="#ef4444" stroke-dasharray="4 3"/>'
                     f'<text x="{W - PAD_R - 2}" y="{y - 3:.1f}" text-anchor="end" '
                     f'font-size="10" fill="#ef4444">{escape(name)} {escape(fmt(v))}</text>')
    ticks = "".join(
        f'<text x="{PAD_L + span * i / max(1, len(xlabels) - 1):.1f}" y="{H - PAD_B + 14}" '
        f'text-anchor="middle" font-size="10">{escape(lab)}</text>'
        for i, lab in enumerate(xlabels))
    return _frame(title, _axes(ymax, fmt) + dots + "".join(marks) + ticks)


def hbars(title: str, labels: Sequence[str], values: Sequence[float], fmt=lambda v: f"{v:g}",
          empty_text: str = "no data") -> str:
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
        out.append(f'<text x="{left - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{escape(lab)}</text><rect class="bar" x="{left}" '
                   f'y="{y + row * 0.15:.1f}" width="{w:.1f}" height="{row * 0.7:.1f}" '
                   f'fill="#f59e0b"><title>{escape(lab)}: {escape(fmt(v))}</title></rect>'
                   f'<text x="{left + w + 4:.1f}" y="{y + row / 2 + 4:.1f}" '
                   f'font-size="11">{escape(fmt(v))}</text>')
    return _frame(title, "".join(out))
