"""Plain geometry for the model page's inline SVG plots: lines over days, and paired bars per bin
or per day. The template only draws what these return (no JavaScript, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PALETTE = 6  # series classes s0 … s5 in console.css


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Series:
    name: str
    css: str
    points: str  # "x,y x,y …" for <polyline>
    dots: list[tuple[float, float, str]]  # x, y, title


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: float
    plot_bottom: float
    top_label: str
    series: list[Series]
    ticks: list[Tick]
    marks: list[tuple[float, float, str]]  # x, width, title: shaded spans (young labels)


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    width: int = 640,
    height: int = 170,
    floor_max: float = 0.0,
    young: Sequence[bool] = (),
    fmt: str = "{:.2f}",
) -> LineChart:
    """One line per series over ``labels`` (days); a missing value breaks nothing, it is skipped.
    ``young[i]`` shades day i (its labels have not all arrived)."""
    top, bottom, left = 14.0, 20.0, 34.0
    plot_h = height - top - bottom
    n = max(len(labels), 1)
    step = (width - left - 8) / max(n - 1, 1)
    values = [v for _, vs in series for v in vs if v is not None]
    peak = max([*values, floor_max, 1e-9])
    out: list[Series] = []
    for k, (name, vs) in enumerate(series):
        pts = [
            (
                round(left + i * step, 2),
                round(top + plot_h - plot_h * v / peak, 2),
                f"{labels[i]}: {fmt.format(v)}",
            )
            for i, v in enumerate(vs)
            if v is not None
        ]
        out.append(Series(name, f"s{k % PALETTE}", " ".join(f"{x},{y}" for x, y, _ in pts), pts))
    every = max(1, n // 8)
    ticks = [
        Tick(round(left + i * step, 2), lab[5:]) for i, lab in enumerate(labels) if (n - 1 - i) % every == 0
    ]
    marks = [
        (round(left + i * step - step / 2, 2), round(step, 2), f"{labels[i]}: labels still arriving")
        for i, flag in enumerate(young)
        if flag
    ]
    return LineChart(width, height, left, top + plot_h, fmt.format(peak), out, ticks, marks)


@dataclass(frozen=True)
class Bar:
    css: str
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: float
    plot_bottom: float
    top_label: str
    bars: list[Bar]
    ticks: list[Tick]
    keys: list[tuple[str, str]]  # css, name


def paired_bars(
    labels: Sequence[str],
    pairs: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 640,
    height: int = 170,
    fmt: str = "{:.0f}",
    every: int = 1,
) -> BarChart:
    """Side by side bars (one per series) for each label: reference vs current share of a bin,
    or live vs proposed reviews of a day."""
    top, bottom, left = 14.0, 20.0, 34.0
    plot_h = height - top - bottom
    n = max(len(labels), 1)
    slot = (width - left) / n
    bar_w = max(slot * 0.8 / max(len(pairs), 1), 1.0)
    peak = max([v for _, vs in pairs for v in vs] + [1e-9])
    bars: list[Bar] = []
    for k, (name, vs) in enumerate(pairs):
        for i, v in enumerate(vs):
            h = plot_h * v / peak
            x = left + i * slot + slot * 0.1 + k * bar_w
            bars.append(
                Bar(f"s{k % PALETTE}", round(x, 2), round(top + plot_h - h, 2), round(bar_w, 2), round(h, 2),
                    f"{labels[i]}: {name} {fmt.format(v)}")
            )  # fmt: skip
    ticks = [
        Tick(round(left + i * slot + slot / 2, 2), lab)
        for i, lab in enumerate(labels)
        if i % max(every, 1) == 0
    ]
    keys = [(f"s{k % PALETTE}", name) for k, (name, _) in enumerate(pairs)]
    return BarChart(width, height, left, top + plot_h, fmt.format(peak), bars, ticks, keys)


def bin_labels(edges: Sequence[float]) -> list[str]:
    """``(-inf, e0], (e0, e1], …, (e_last, +inf)`` as short labels: "≤e0", "≤e1", …, ">e_last"."""

    def short(x: float) -> str:
        return f"{x:.3g}"

    return [f"≤{short(e)}" for e in edges] + ([f">{short(edges[-1])}"] if edges else ["all"])
