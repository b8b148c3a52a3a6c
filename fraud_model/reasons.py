"""Readable reason codes from per-feature contributions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fraud_model.features import READABLE_NAMES

BINARY_FEATURES = frozenset({"during_weekend", "during_night"})


def reason_code(feature: str, value: float, typical: float | None) -> str:
    """``CARD_NB_TX_1D_HIGH`` style code: the feature and its direction against the typical value."""
    name = feature.upper()
    if feature in BINARY_FEATURES:
        return name if value > 0 else f"NOT_{name}"
    if typical is None:
        return name
    return f"{name}_HIGH" if value > typical else f"{name}_LOW"


def _fmt(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}"


def reason_codes(
    contributions: Sequence[tuple[str, float]],
    values: Mapping[str, float],
    typical: Mapping[str, float],
    *,
    only_positive: bool = True,
) -> list[dict[str, Any]]:
    """One reason per (feature, contribution), skipping those that lowered the score."""
    out: list[dict[str, Any]] = []
    for feature, contribution in contributions:
        if only_positive and contribution <= 0:
            continue
        value = float(values[feature])
        ref = typical.get(feature)
        code = reason_code(feature, value, ref)
        label = READABLE_NAMES.get(feature, feature)
        if feature in BINARY_FEATURES:
            text = label if value > 0 else f"Not: {label.lower()}"
        elif ref is None:
            text = f"{label}: {_fmt(value)}"
        else:
            word = "high" if value > ref else "low"
            text = f"{label} is {word} ({_fmt(value)} against a typical {_fmt(ref)})"
        out.append(
            {"code": code, "feature": feature, "text": text, "value": value, "contribution": contribution}
        )
    return out
