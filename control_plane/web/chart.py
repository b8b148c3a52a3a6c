"""A per-day bar chart (flagged vs decided) as plain geometry for an inline SVG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from control_plane.review.service import DayCount


@dataclass(frozen=True)
class Bar:
    kind: str  # flagged | decided
    x: float
    y: float
    width: float
    height: float
    count: int
    day: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str


@dataclass(frozen=True)
class DailyChart:
    width: int
    height: int
    plot_bottom: float
    bars: list[Bar]
    labels: list[Label]
    max_count: int
    total_flagged: int
    total_decided: int


def daily_chart(days: Sequence[DayCount], *, width: int = 640, height: int = 150) -> DailyChart:
    """Two bars a day, scaled to the busiest day; every other day labelled (MM-DD)."""
    top, bottom, left = 14.0, 20.0, 28.0
    plot_h = height - top - bottom
    slot = (width - left) / max(len(days), 1)
    bar_w = max(slot * 0.36, 1.0)
    peak = max([max(d.flagged, d.decided) for d in days] + [1])
    bars: list[Bar] = []
    labels: list[Label] = []
    for i, d in enumerate(days):
        x0 = left + i * slot + slot * 0.1
        for j, (kind, count) in enumerate((("flagged", d.flagged), ("decided", d.decided))):
            h = plot_h * count / peak
            bars.append(
                Bar(
                    kind,
                    round(x0 + j * bar_w, 2),
                    round(top + plot_h - h, 2),
                    round(bar_w, 2),
                    round(h, 2),
                    count,
                    d.day.isoformat(),
                )
            )
        if (len(days) - 1 - i) % 2 == 0 or len(days) <= 7:  # today always labelled
            labels.append(Label(round(x0 + bar_w, 2), d.day.strftime("%m-%d")))
    return DailyChart(
        width=width,
        height=height,
        plot_bottom=top + plot_h,
        bars=bars,
        labels=labels,
        max_count=peak,
        total_flagged=sum(d.flagged for d in days),
        total_decided=sum(d.decided for d in days),
    )
