"""What both engines derive from a feature set: the entity groups with the state each keeps,
and the small value rules (amount units, comparisons, booleans) they must apply identically."""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fraud_model.feature_sets.document import Feature, FeatureSet

DAY_S = 86_400
HOUR_S = 3_600
AMOUNT_SCALE = 10_000
UNKNOWN_LABEL = -1
UNKNOWN_CATEGORY = "__unknown__"
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def flag_name(feature: Feature) -> str:
    """The per-event flag column a ``where`` count needs (shared by every count with that condition)."""
    assert feature.where is not None
    w = feature.where
    return f"{w.feature}{w.op}{w.value!r}"


@dataclass(frozen=True)
class EntityGroup:
    """All features keyed by one entity (one or more attributes) share one state per entity value."""

    entity: tuple[str, ...]
    horizon_s: int
    unit_columns: tuple[str, ...]
    distinct_columns: tuple[str, ...]
    flags: tuple[tuple[str, Feature], ...]
    labels: bool
    delay_s: int
    layout: str

    def key(self, values: Mapping[str, Any]) -> str | None:
        """The state key of this group's entity in ``values`` (None when a key attribute is missing)."""
        parts = []
        for name in self.entity:
            v = text_value(values.get(name))
            if v is None:
                return None
            parts.append(v)
        return f"fs:{self.layout}:" + "\x1f".join(parts)


def build_groups(fs: FeatureSet) -> dict[tuple[str, ...], EntityGroup]:
    """One group per distinct entity, with the horizon and columns its features need."""
    raw: dict[tuple[str, ...], dict[str, Any]] = {}
    delay_s = fs.delay_days * DAY_S
    for f in fs.features:
        if f.kind not in ("velocity", "label_risk"):
            continue
        g = raw.setdefault(
            f.entity, {"horizon": 0, "units": [], "distinct": [], "flags": {}, "labels": False}
        )
        assert f.window_s is not None
        if f.kind == "label_risk":
            g["labels"] = True
            g["horizon"] = max(g["horizon"], delay_s + f.window_s)
            continue
        g["horizon"] = max(g["horizon"], f.window_s)
        if f.aggregate in ("sum", "mean", "amount_ratio") and f.of not in g["units"]:
            g["units"].append(f.of)
        if f.aggregate == "distinct" and f.of not in g["distinct"]:
            g["distinct"].append(f.of)
        if f.where is not None:
            g["flags"].setdefault(flag_name(f), f)
    out: dict[tuple[str, ...], EntityGroup] = {}
    for entity, g in raw.items():
        flags = tuple(sorted(g["flags"].items()))
        spec = repr(
            (entity, g["horizon"], g["units"], g["distinct"], [k for k, _ in flags], g["labels"], delay_s)
        )
        layout = hashlib.sha256(spec.encode()).hexdigest()[:10]
        out[entity] = EntityGroup(
            entity,
            g["horizon"],
            tuple(g["units"]),
            tuple(g["distinct"]),
            flags,
            g["labels"],
            delay_s,
            layout,
        )
    return out


def text_value(value: Any) -> str | None:
    """A categorical, identifier or country value as text; None (or NaN, or blank) is missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    return text if text.strip() else None


def number_value(value: Any) -> float | None:
    """A numeric or boolean value as a float; None when missing or not a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return 1.0
        if low in _FALSE:
            return 0.0
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def units(value: float | None) -> int:
    """An amount-like value in exact integer 1/AMOUNT_SCALE units (missing counts as 0)."""
    return 0 if value is None else round(value * AMOUNT_SCALE)


def condition_holds(feature: Feature, value: float) -> int:
    """1 when a past event's value of the ``where`` feature met the condition (NaN never does)."""
    assert feature.where is not None
    if math.isnan(value):
        return 0
    return 1 if OPS[feature.where.op](value, feature.where.value) else 0
