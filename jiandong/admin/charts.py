"""Charts drawn on the server as SVG (no JavaScript, nothing fetched): bars of one or more series per label,
or horizontal bars for named items. Text is escaped; sizes are in SVG user units (the page scales them)."""

from __future__ import annotations

import dataclasses
import math
import typing
from html import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 34, 44
COLOURS = ("#c8283a", "#1d4ed8", "#15803d", "#b45309")
FONT = 'font-family="-apple-system, PingFang SC, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"'


@dataclasses.dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


def _nice_step(span: float, whole: bool) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving at most 5 steps over `span`; at least 1 for counts."""
    if span <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(span / 5))
    for multiple in (1, 2, 5, 10):
        step = multiple * power
        if span / step <= 5:
            return max(step, 1.0) if whole else step
    return 10 * power


def _scale(values: list[float]) -> tuple[float, float, float]:
    """(bottom, top, step) of an axis holding 0 and every value, on round ticks."""
    low, high = min([0.0, *values]), max([0.0, *values])
    whole = all(float(v).is_integer() for v in values)
    step = _nice_step(high - low, whole)
    bottom, top = math.floor(low / step) * step, math.ceil(high / step) * step
    return bottom, (top if top > bottom else bottom + step), step


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def bars(title: str, labels: list[str], series: list[Series], *, label_every: int = 1,
         fmt: typing.Callable[[float], str] = _number, tip: typing.Callable[[float], str] | None = None) -> str:
    """Grouped vertical bars: one group per label, one bar per series (negative values go below the zero line).
    `fmt` writes the axis' values, `tip` (default `fmt`) a bar's value in its tooltip."""
    tip = tip or fmt
    bottom, top, step = _scale([v for s in series for v in s.values])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + (top - v) / (top - bottom) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" {FONT} font-size="12">',
             f'<title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="18" font-size="14" font-weight="600" fill="#1f2933">{escape(title)}</text>']
    for i in range(round((top - bottom) / step) + 1):
        v = bottom + step * i
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#6b7280">'
                     f'{escape(fmt(v))}</text>')
    group = plot_w / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    for i, label in enumerate(labels):
        x0 = LEFT + i * group + group * 0.1
        for j, s in enumerate(series):
            v = s.values[i]
            y_top, y_zero = y(max(v, 0)), y(min(v, 0))
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{y_top:.1f}" width="{max(bar - 1, 1):.1f}" '
                         f'height="{max(y_zero - y_top, 0):.1f}" fill="{COLOURS[j % len(COLOURS)]}">'
                         f'<title>{escape(label)} {escape(s.name)}: {escape(tip(v))}</title></rect>')
        if i % label_every == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{LEFT + i * group + group / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                         f'text-anchor="middle" fill="#6b7280">{escape(label)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#9ca3af"/>')
    if len(series) > 1:
        x = LEFT
        for j, s in enumerate(series):
            parts.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{COLOURS[j % len(COLOURS)]}"/>'
                         f'<text x="{x + 14}" y="{HEIGHT - 7}" fill="#1f2933">{escape(s.name)}</text>')
            x += 24 + 13 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)


# A name beside a horizontal bar: two lines of this many characters, the middle left out past that (the start
# and the end are what tell two matches apart: "青竹 vs 猛龙 第 3 轮" / "… 第 4 轮").
LINE_CHARS = 16


def label_lines(label: str) -> list[str]:
    """`label` on at most two lines of LINE_CHARS characters; a longer one keeps its start and its end."""
    if len(label) <= LINE_CHARS:
        return [label]
    if len(label) > 2 * LINE_CHARS:
        label = label[:LINE_CHARS] + "…" + label[-(LINE_CHARS - 1):]
    return [label[:LINE_CHARS], label[LINE_CHARS:]]


def hbars(title: str, items: list[tuple[str, list[float]]], names: list[str],
          links: list[str] | None = None) -> str:
    """Horizontal bars for named items (matches, streams), one bar per value name; a note when there are none.
    `links`: per item, the page behind it (its name links there)."""
    height = TOP + max(len(items), 1) * 34 + 24
    top = max(_scale([v for _, vs in items for v in vs])[1], 1.0)
    label_w, plot_w = 200, WIDTH - 200 - RIGHT - 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}" {FONT} font-size="12">', f'<title>{escape(title)}</title>',
             f'<text x="8" y="18" font-size="14" font-weight="600" fill="#1f2933">{escape(title)}</text>']
    if not items:
        parts.append(f'<text x="8" y="{TOP + 14}" fill="#6b7280">暂无数据</text>')
    for i, (label, values) in enumerate(items):
        y0 = TOP + i * 34
        lines = label_lines(label)
        first_y = y0 + (14 if len(lines) == 1 else 8)
        spans = "".join(f'<tspan x="{label_w - 8}" y="{first_y + 14 * n}">{escape(line)}</tspan>'
                        for n, line in enumerate(lines))
        text = (f'<text text-anchor="end" fill="{"#1d4ed8" if links else "#1f2933"}">{spans}'
                f'<title>{escape(label)}</title></text>')
        parts.append(f'<a href="{escape(links[i])}">{text}</a>' if links else text)
        bar_h = 26 / max(len(values), 1)
        for j, v in enumerate(values):
            w = plot_w * v / top
            parts.append(f'<rect x="{label_w}" y="{y0 + j * bar_h:.1f}" width="{w:.1f}" height="{bar_h - 2:.1f}" '
                         f'fill="{COLOURS[j % len(COLOURS)]}"><title>{escape(names[j])}: {_number(v)}</title></rect>'
                         f'<text x="{label_w + w + 4:.1f}" y="{y0 + j * bar_h + bar_h - 4:.1f}" fill="#1f2933">'
                         f'{_number(v)}</text>')
    if len(names) > 1:
        x = label_w
        for j, name in enumerate(names):
            parts.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{COLOURS[j % len(COLOURS)]}"/>'
                         f'<text x="{x + 14}" y="{height - 7}" fill="#1f2933">{escape(name)}</text>')
            x += 24 + 13 * len(name)
    parts.append("</svg>")
    return "".join(parts)
