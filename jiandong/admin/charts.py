"""Charts drawn on the server (no JavaScript, nothing fetched): bars of one or more series per label as SVG,
horizontal bars for named items as a list of HTML meters. The SVG is laid out in per cent across and pixels
down, so its text keeps its size at any width; titles, legends and names are HTML, which wraps. Text is escaped."""

from __future__ import annotations

import dataclasses
import math
import typing
from html import escape

# Pixels down; per cent across (the axis' values to the left of the plot, room for the last label to its right).
HEIGHT, TOP, BOTTOM = 220, 10, 26
LEFT, RIGHT = 13.0, 2.0
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


def _legend(names: list[str]) -> str:
    """The series' names beside their colours (the CSS gives key `cN` its colour), when there are several."""
    if len(names) < 2:
        return ""
    keys = "".join(f'<li><span class="key c{j % len(COLOURS)}"></span>{escape(name)}</li>'
                   for j, name in enumerate(names))
    return f'<ul class="legend">{keys}</ul>'


def bars(title: str, labels: list[str], series: list[Series], *, label_every: int = 1,
         fmt: typing.Callable[[float], str] = _number, tip: typing.Callable[[float], str] | None = None) -> str:
    """Grouped vertical bars: one group per label, one bar per series (negative values go below the zero line).
    `fmt` writes the axis' values, `tip` (default `fmt`) a bar's value in its tooltip."""
    tip = tip or fmt
    bottom, top, step = _scale([v for s in series for v in s.values])
    plot_h = HEIGHT - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + (top - v) / (top - bottom) * plot_h

    parts = [f'<figure class="chart-figure"><figcaption>{escape(title)}</figcaption>',
             f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" height="{HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" {FONT} font-size="12">', f'<title>{escape(title)}</title>']
    for i in range(round((top - bottom) / step) + 1):
        v = bottom + step * i
        parts.append(f'<line x1="{LEFT}%" x2="{100 - RIGHT}%" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{LEFT - 1}%" y="{y(v) + 4:.1f}" text-anchor="end" fill="#6b7280">'
                     f'{escape(fmt(v))}</text>')
    group = (100 - LEFT - RIGHT) / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    for i, label in enumerate(labels):
        x0 = LEFT + i * group + group * 0.1
        for j, s in enumerate(series):
            v = s.values[i]
            y_top, y_zero = y(max(v, 0)), y(min(v, 0))
            parts.append(f'<rect x="{x0 + j * bar:.2f}%" y="{y_top:.1f}" width="{bar * 0.9:.2f}%" '
                         f'height="{max(y_zero - y_top, 0):.1f}" fill="{COLOURS[j % len(COLOURS)]}">'
                         f'<title>{escape(label)} {escape(s.name)}: {escape(tip(v))}</title></rect>')
        # Counted from the last label (today, this week), which is always shown, so no two labels crowd.
        if (len(labels) - 1 - i) % label_every == 0:
            parts.append(f'<text x="{LEFT + i * group + group / 2:.2f}%" y="{HEIGHT - 8}" '
                         f'text-anchor="middle" fill="#6b7280">{escape(label)}</text>')
    parts.append(f'<line x1="{LEFT}%" x2="{100 - RIGHT}%" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#9ca3af"/>')
    parts.append(f"</svg>{_legend([s.name for s in series])}</figure>")
    return "".join(parts)


def hbars(title: str, items: list[tuple[str, list[float]]], names: list[str],
          links: list[str] | None = None) -> str:
    """Horizontal bars for named items (matches, streams), one meter per value name; a note when there are none.
    `links`: per item, the page behind it (its name links there). A name is shown whole, wrapping between words."""
    top = max(_scale([v for _, vs in items for v in vs])[1], 1.0)
    parts = [f'<figure class="chart-figure"><figcaption>{escape(title)}</figcaption>']
    if not items:
        parts.append('<p class="muted">暂无数据</p>')
    else:
        parts.append('<ul class="hbars">')
        for i, (label, values) in enumerate(items):
            name = (f'<a class="name" href="{escape(links[i])}">{escape(label)}</a>' if links
                    else f'<span class="name">{escape(label)}</span>')
            meters = "".join(
                f'<span class="value"><meter class="c{j % len(COLOURS)}" min="0" max="{top:g}" value="{v:g}" '
                f'title="{escape(names[j])}: {_number(v)}" aria-label="{escape(names[j])}"></meter>'
                f'<span class="n">{_number(v)}</span></span>' for j, v in enumerate(values))
            parts.append(f"<li>{name}<span class=\"values\">{meters}</span></li>")
        parts.append("</ul>")
    parts.append(f"{_legend(names)}</figure>")
    return "".join(parts)
