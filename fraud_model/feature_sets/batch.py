"""The batch engine: every feature of a :class:`FeatureSet` for every row of a frame, vectorised.

Per entity group the rows are sorted by (entity, time, row) and each window is a pair of
``searchsorted`` bounds on one monotone key, as in :func:`fraud_model.features.batch_features`.
Velocity windows are (t - w, t] and include the transaction itself and earlier rows of the same
second; delayed-label windows are (t - delay - w, t - delay]. Sums are exact integer sums of
values in 1/10,000 units, so :mod:`.online` gives the same floats. A row whose entity key is
missing gets NaN for that entity's features (the learner treats it as missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from fraud_model import schema as s
from fraud_model.feature_sets.document import Feature, FeatureSet
from fraud_model.feature_sets.plan import (
    AMOUNT_SCALE,
    DAY_S,
    HOUR_S,
    OPS,
    EntityGroup,
    build_groups,
    number_value,
    text_value,
)

Encodings = Mapping[str, Mapping[str, Any]]


def text_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as an object array of text values, None where missing (or absent)."""
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    col = frame[name]
    if not pd.api.types.is_string_dtype(col):
        return np.asarray([text_value(v) for v in col.to_numpy(dtype=object)], dtype=object)
    # Text columns (the common case) the vectorised way, with text_value's rules: blank is missing.
    missing = col.isna().to_numpy(dtype=bool, copy=True)
    text = col.astype("str")
    missing |= text.str.strip().eq("").to_numpy(dtype=bool)
    out = text.to_numpy(dtype=object, copy=True)
    out[missing] = None
    return out


def number_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64, NaN where missing (or absent)."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    col = frame[name]
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    values = [number_value(v) for v in col.to_numpy(dtype=object)]
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def entity_codes(frame: pd.DataFrame, entity: tuple[str, ...]) -> np.ndarray:
    """An int64 code per row for the entity's value; -1 where any key attribute is missing."""
    combined: np.ndarray | None = None
    for name in entity:
        codes, uniques = pd.factorize(text_column(frame, name), use_na_sentinel=True)
        codes = codes.astype(np.int64)
        if combined is None:
            combined = codes
        else:
            merged = np.where((combined < 0) | (codes < 0), -1, combined * (len(uniques) + 1) + codes)
            combined = np.where(merged < 0, -1, pd.factorize(merged)[0]).astype(np.int64)
    assert combined is not None
    return combined


class _Group:
    """One entity group's rows sorted by (entity, time, row), with the search keys."""

    def __init__(self, group: EntityGroup, codes: np.ndarray, ts_s: np.ndarray) -> None:
        self.rows = np.flatnonzero(codes >= 0)
        c, t = codes[self.rows], ts_s[self.rows]
        local = np.lexsort((t, c))
        self.order = self.rows[local]
        self.codes = c[local]
        self.ts = t[local]
        lookback = group.horizon_s + 1
        t0 = int(t.min()) if len(t) else 0
        span = (int(t.max()) - t0 if len(t) else 0) + lookback + 1
        self.keys = self.codes * span + (self.ts - t0 + lookback)
        self.pos = np.arange(len(self.order))
        self._starts: dict[int, np.ndarray] = {}

    def start(self, window_s: int) -> np.ndarray:
        if window_s not in self._starts:
            self._starts[window_s] = np.searchsorted(self.keys, self.keys - window_s, side="right")
        return self._starts[window_s]

    def windowed(self, per_row: np.ndarray, window_s: int) -> np.ndarray:
        """Sum of ``per_row`` (already in sorted order) over each row's window, itself included."""
        cs = np.zeros(len(per_row) + 1, dtype=per_row.dtype)
        np.cumsum(per_row, out=cs[1:])
        return np.asarray(cs[self.pos + 1] - cs[self.start(window_s)])

    def scatter(self, n: int, values: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        out[self.order] = values
        return out


def _distinct(g: _Group, values: np.ndarray, window_s: int) -> np.ndarray:
    """Distinct non-missing values over each row's window (two pointers; windows only move forward)."""
    starts = g.start(window_s).tolist()
    codes = g.codes.tolist()
    vals = values.tolist()
    out = [0] * len(vals)
    seen: dict[Any, int] = {}
    lo = 0
    for i, v in enumerate(vals):
        if i and codes[i] != codes[i - 1]:
            seen.clear()
            lo = i
        start = starts[i]
        while lo < start:
            old = vals[lo]
            if old is not None:
                left = seen[old] - 1
                if left:
                    seen[old] = left
                else:
                    del seen[old]
            lo += 1
        if v is not None:
            seen[v] = seen.get(v, 0) + 1
        out[i] = len(seen)
    return np.asarray(out, dtype=np.float64)


def _velocity(f: Feature, g: _Group, frame: pd.DataFrame, done: dict[str, np.ndarray]) -> np.ndarray:
    assert f.window_s is not None
    n = len(g.order)
    if f.aggregate == "count":
        if f.where is None:
            return np.asarray(g.pos - g.start(f.window_s) + 1, dtype=np.float64)
        ref = done[f.where.feature][g.order]
        flags = np.zeros(n, dtype=np.int64)
        ok = ~np.isnan(ref)
        flags[ok] = OPS[f.where.op](ref[ok], f.where.value)
        return g.windowed(flags, f.window_s).astype(np.float64)
    if f.aggregate == "since_previous":
        gap = np.full(n, f.window_s, dtype=np.int64)
        if n > 1:
            same = g.codes[1:] == g.codes[:-1]
            gap[1:] = np.where(same, np.minimum(g.ts[1:] - g.ts[:-1], f.window_s), f.window_s)
        return gap.astype(np.float64)
    if f.aggregate == "distinct":
        assert f.of is not None
        return _distinct(g, text_column(frame, f.of)[g.order], f.window_s)
    assert f.of is not None
    raw = number_column(frame, f.of)[g.order]
    units = np.rint(np.nan_to_num(raw, nan=0.0) * AMOUNT_SCALE).astype(np.int64)
    sums = g.windowed(units, f.window_s)
    if f.aggregate == "sum":
        return np.asarray(sums / AMOUNT_SCALE, dtype=np.float64)
    count = g.pos - g.start(f.window_s) + 1
    mean = np.asarray((sums / count) / AMOUNT_SCALE, dtype=np.float64)
    if f.aggregate == "mean":
        return mean
    ratio = np.divide(raw, mean, out=np.ones(n, dtype=np.float64), where=mean > 0)
    return np.where(np.isnan(raw), np.nan, ratio)


def _label_risk(f: Feature, g: _Group, fraud: np.ndarray, delay_s: int) -> np.ndarray:
    assert f.window_s is not None
    cf = np.zeros(len(g.order) + 1, dtype=np.int64)
    np.cumsum(fraud[g.order], out=cf[1:])
    hi = np.searchsorted(g.keys, g.keys - delay_s, side="right")
    lo = np.searchsorted(g.keys, g.keys - delay_s - f.window_s, side="right")
    count = hi - lo
    if f.stat == "count":
        return np.asarray(count, dtype=np.float64)
    frauds = cf[hi] - cf[lo]
    risk = np.divide(frauds, count, out=np.zeros(len(count), dtype=np.float64), where=count > 0)
    return np.asarray(risk, dtype=np.float64)


def local_parts(ts_s: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """(hour, weekday with Monday 0) of each epoch second in the time zone."""
    if timezone == "UTC":
        return np.floor_divide(np.mod(ts_s, DAY_S), HOUR_S), (np.floor_divide(ts_s, DAY_S) + 3) % 7
    local = pd.DatetimeIndex(pd.to_datetime(ts_s, unit="s", utc=True)).tz_convert(ZoneInfo(timezone))
    return np.asarray(local.hour, dtype=np.int64), np.asarray(local.day_of_week, dtype=np.int64)


def _calendar(f: Feature, hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    if f.part == "hour":
        return hour.astype(np.float64)
    if f.part == "weekday":
        return weekday.astype(np.float64)
    if f.part == "weekend":
        return (weekday >= 5).astype(np.float64)
    return (hour <= f.night_last_hour).astype(np.float64)


def _operand(fs: FeatureSet, frame: pd.DataFrame, name: str, done: dict[str, np.ndarray]) -> np.ndarray:
    if name in done:
        return done[name]
    kind = fs.attribute_type(name)
    return number_column(frame, name) if kind in ("numeric", "boolean") else text_column(frame, name)


def _compare(fs: FeatureSet, f: Feature, frame: pd.DataFrame, done: dict[str, np.ndarray]) -> np.ndarray:
    assert f.left is not None and f.op is not None
    left = _operand(fs, frame, f.left, done)
    right: Any = _operand(fs, frame, f.right, done) if f.right is not None else f.right_value
    out = np.full(len(frame), np.nan)
    if left.dtype == object:
        rv = right if isinstance(right, np.ndarray) else np.full(len(frame), right, dtype=object)
        for i, (a, b) in enumerate(zip(left, rv, strict=True)):
            if a is not None and b is not None:
                out[i] = 1.0 if OPS[f.op](a, b) else 0.0
        return out
    r = np.asarray(right, dtype=np.float64) if isinstance(right, np.ndarray) else np.float64(float(right))
    ok = ~np.isnan(left) & ~np.isnan(r)
    result = np.asarray(OPS[f.op](left, r), dtype=np.float64)
    return np.where(ok, result, out)


def encode(f: Feature, values: np.ndarray, encodings: Encodings) -> np.ndarray:
    learned = encodings.get(f.name)
    if learned is None:
        raise ValueError(f"feature {f.name} needs the encoding learned at training time")
    table, default = learned["values"], float(learned["default"])
    return np.asarray([table.get(v, default) if v is not None else default for v in values], dtype=np.float64)


def known_labels(frame: pd.DataFrame, labels: pd.Series | None) -> np.ndarray:
    """0/1 outcomes for delayed-label risk (missing counts as not fraudulent, as online)."""
    if labels is not None:
        base = pd.to_numeric(labels.reindex(frame.index), errors="coerce")
    elif s.IS_FRAUD in frame.columns:
        base = pd.to_numeric(frame[s.IS_FRAUD], errors="coerce")
    else:
        return np.zeros(len(frame), dtype=np.int64)
    return np.asarray(
        np.nan_to_num(base.to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0) > 0, dtype=np.int64
    )


def batch_compute(
    fs: FeatureSet,
    frame: pd.DataFrame,
    *,
    encodings: Encodings | None = None,
    labels: pd.Series | None = None,
) -> pd.DataFrame:
    """Every feature of ``fs`` for every row of ``frame`` (same index, float64, in ``fs`` order)."""
    n = len(frame)
    ts_s = s.epoch_seconds(frame[s.TS]) if n else np.zeros(0, dtype=np.int64)
    hour, weekday = local_parts(ts_s, fs.timezone)
    groups = {e: _Group(g, entity_codes(frame, e), ts_s) for e, g in build_groups(fs).items()}
    fraud = known_labels(frame, labels)
    done: dict[str, np.ndarray] = {}
    for f in fs.order():
        if f.kind == "passthrough":
            assert f.attribute is not None
            done[f.name] = number_column(frame, f.attribute)
        elif f.kind == "categorical":
            assert f.attribute is not None
            done[f.name] = encode(f, text_column(frame, f.attribute), encodings or {})
        elif f.kind == "calendar":
            done[f.name] = _calendar(f, hour, weekday)
        elif f.kind == "compare":
            done[f.name] = _compare(fs, f, frame, done)
        elif f.kind == "velocity":
            g = groups[f.entity]
            done[f.name] = g.scatter(n, _velocity(f, g, frame, done))
        else:
            g = groups[f.entity]
            done[f.name] = g.scatter(n, _label_risk(f, g, fraud, fs.delay_days * DAY_S))
    return pd.DataFrame({name: done[name] for name in fs.feature_names}, index=frame.index)


def fit_encodings(
    fs: FeatureSet, frame: pd.DataFrame, labels: np.ndarray, *, smoothing: float = 20.0
) -> dict[str, Any]:
    """What each categorical feature learns from the training rows, stored with the model.

    ``target``: the category's fraud rate shrunk towards the overall rate by ``smoothing``
    pseudo-rows; ``frequency``: the category's share of rows. Unseen and missing categories get
    the overall rate (target) or 0 (frequency), and are counted online.
    """
    y = np.asarray(labels, dtype=np.float64)
    prior = float(y.mean()) if len(y) else 0.0
    out: dict[str, Any] = {}
    for f in fs.features:
        if f.kind != "categorical":
            continue
        assert f.attribute is not None
        values = pd.Series(text_column(frame, f.attribute), dtype=object)
        present = values.notna().to_numpy()
        stats = (
            pd.DataFrame({"v": values[present].astype(str), "y": y[present]})
            .groupby("v")["y"]
            .agg(["sum", "count"])
        )
        if f.encoding == "frequency":
            table = {str(k): float(c) / max(len(y), 1) for k, c in stats["count"].items()}
            out[f.name] = {"values": table, "default": 0.0}
        else:
            rates = (stats["sum"] + prior * smoothing) / (stats["count"] + smoothing)
            out[f.name] = {"values": {str(k): float(v) for k, v in rates.items()}, "default": prior}
    return out
