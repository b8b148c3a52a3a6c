"""The built-in handbook feature set written as a document: the default of every tenant.

It gives exactly :data:`fraud_model.features.FEATURE_NAMES`, in that order, with the same
numbers as :func:`fraud_model.features.batch_features` (a test replays a stream through both).
"""

from __future__ import annotations

from typing import Any

from fraud_model.feature_sets.document import FeatureSet, parse_feature_set
from fraud_model.features import FEATURE_NAMES, HIGH_AMOUNT_RATIO, READABLE_NAMES

DEFAULT_NAME = "handbook"


def _card(name: str, aggregate: str, window: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "velocity",
        "entity": "card_token",
        "aggregate": aggregate,
        "window": window,
        **extra,
    }


def _terminal(window: str) -> list[dict[str, Any]]:
    days = window.removesuffix("d")
    return [
        {
            "name": f"terminal_nb_tx_{days}d",
            "kind": "label_risk",
            "entity": "terminal_id",
            "window": window,
            "stat": "count",
        },
        {
            "name": f"terminal_risk_{days}d",
            "kind": "label_risk",
            "entity": "terminal_id",
            "window": window,
            "stat": "rate",
        },
    ]


def handbook_document() -> dict[str, Any]:
    """The handbook's 22 features (see :mod:`fraud_model.features`) as a feature-set document."""
    high = {"feature": "card_amount_to_avg_30d", "op": ">", "value": HIGH_AMOUNT_RATIO}
    features: list[dict[str, Any]] = [
        {"name": "amount", "kind": "passthrough", "attribute": "amount"},
        {"name": "during_weekend", "kind": "calendar", "part": "weekend"},
        {"name": "during_night", "kind": "calendar", "part": "night", "night_last_hour": 6},
        _card("card_nb_tx_1d", "count", "1d"),
        _card("card_avg_amount_1d", "mean", "1d"),
        _card("card_nb_tx_7d", "count", "7d"),
        _card("card_avg_amount_7d", "mean", "7d"),
        _card("card_nb_tx_30d", "count", "30d"),
        _card("card_avg_amount_30d", "mean", "30d"),
        *_terminal("1d"),
        *_terminal("7d"),
        *_terminal("30d"),
        _card("card_nb_tx_1h", "count", "1h"),
        _card("card_amount_sum_1h", "sum", "1h"),
        _card("card_amount_sum_1d", "sum", "1d"),
        _card("card_secs_since_prev", "since_previous", "30d"),
        _card("card_amount_to_avg_30d", "amount_ratio", "30d"),
        _card("card_nb_high_amount_7d", "count", "7d", where=high),
        _card("card_nb_high_amount_14d", "count", "14d", where=high),
    ]
    for f in features:
        f["label"] = READABLE_NAMES[f["name"]]
    assert tuple(f["name"] for f in features) == FEATURE_NAMES
    return {"name": DEFAULT_NAME, "timezone": "UTC", "delay_days": 7, "attributes": {}, "features": features}


def handbook_feature_set(delay_days: int = 7) -> FeatureSet:
    return parse_feature_set({**handbook_document(), "delay_days": delay_days})
