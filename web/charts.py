"""The grade over time as a server-drawn SVG: steps, since a grade holds until the next change."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 16, 16, 28


def grade_chart(timeline: list[dict[str, Any]]) -> str:
    """Points (y) by day (x) as steps, each change marked with its grade letter."""
    if not timeline:
        return ""
    days = [date.fromisoformat(p["day"]) for p in timeline]
    values = [int(p["points"]) for p in timeline]
    low, high = min([*values, 0]), max([*values, 100])
    first, last = days[0].toordinal(), max(days[-1].toordinal(), days[0].toordinal() + 1)

    def x(day: date) -> float:
        return LEFT + (day.toordinal() - first) / (last - first) * (WIDTH - LEFT - RIGHT)

    def y(value: int) -> float:
        return TOP + (high - value) / (high - low) * (HEIGHT - TOP - BOTTOM)

    path = [f"M{x(days[0]):.1f},{y(values[0]):.1f}"]
    for day, value in zip(days[1:], values[1:], strict=True):
        path.append(f"H{x(day):.1f}V{y(value):.1f}")
    marks = []
    previous = None
    for point, day, value in zip(timeline, days, values, strict=True):
        if point["grade"] != previous:
            marks.append(f'<circle cx="{x(day):.1f}" cy="{y(value):.1f}" r="3"/>'
                         f'<text x="{x(day):.1f}" y="{y(value) - 6:.1f}" '
                         f'text-anchor="middle">{escape(str(point["grade"]))}</text>')
            previous = point["grade"]
    ticks = [f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
             f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
             f'class="grid"/>' for v in sorted({low, 60, 80, high})]
    labels = [f'<text x="{x(days[0]):.1f}" y="{HEIGHT - 8}">{days[0].isoformat()}</text>',
              f'<text x="{x(days[-1]):.1f}" y="{HEIGHT - 8}" text-anchor="end">'
              f'{days[-1].isoformat()}</text>']
    title = " · ".join(f"{p['day']} {p['grade']} {p['points']}" for p in timeline[-12:])
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
            f"<title>{escape(title)}</title>{''.join(ticks)}"
            f'<path d="{"".join(path)}" class="line"/>{"".join(marks)}{"".join(labels)}</svg>')
