"""The hot path's view of tenant feature sets: which plan scores a version, the attributes a check
may carry, and one check's features from the online engine's per-entity state.

A version trained on a tenant feature set carries the set (document and learned encodings) in its
lineage (``params.feature_set``); the serving registry compiles it once per version. A version
without one is scored with the built-in handbook features (``fraud_model.online_features``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from control_plane.errors import InvalidInput
from control_plane.scoring.schemas import FraudCheckRequest
from fraud_model.feature_sets import (
    Attribute,
    EntityState,
    FeatureSet,
    FeatureSetError,
    InputCounts,
    OnlineFeatureSet,
    parse_feature_set,
)
from fraud_model.feature_sets.attributes import check_attributes

log = logging.getLogger(__name__)
# The request's own optional fields, usable by a feature set as built-in attributes.
REQUEST_FIELDS = ("channel", "country", "device", "mcc")


@dataclass(frozen=True)
class ServingPlan:
    """A compiled feature set for the versions trained on it."""

    label: str
    engine: OnlineFeatureSet
    readable: Mapping[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        return self.engine.fs.feature_names


def plan_from_lineage(params: Mapping[str, Any] | None) -> ServingPlan | None:
    """The plan a version's lineage names (None for the built-in features, or a broken lineage)."""
    info = (params or {}).get("feature_set")
    if not isinstance(info, Mapping):
        return None
    try:
        fs = parse_feature_set(info["document"], name=str(info.get("name", "tenant")))
        engine = OnlineFeatureSet(fs, info.get("encodings") or {})
    except (FeatureSetError, KeyError, ValueError) as exc:
        log.error("feature set %s of a model version cannot be compiled: %s", info.get("label"), exc)
        return None
    return ServingPlan(str(info.get("label", fs.name)), engine, {f.name: f.label for f in fs.features})


def attributes_of(document: Mapping[str, Any] | None) -> dict[str, Attribute] | None:
    if document is None:
        return None
    try:
        fs: FeatureSet = parse_feature_set(document)
    except FeatureSetError:
        return None
    return dict(fs.attributes)


def validate_attributes(schema: Mapping[str, Attribute] | None, req: FraudCheckRequest) -> None:
    """422 naming ``attributes.<name>`` for the first attribute the tenant's active set refuses."""
    given = req.attributes or {}
    if schema is None:
        if given:
            name = next(iter(given))
            raise InvalidInput(
                "this tenant has no feature set declaring attributes (PUT /v1/feature-sets/{name})",
                field=f"attributes.{name}",
            )
        return
    problems = check_attributes(schema, given)
    if problems:
        name, message = problems[0]
        raise InvalidInput(
            f"attributes.{name} {message}",
            field=f"attributes.{name}",
            extra={
                "errors": [
                    {"field": f"attributes.{n}", "message": m, "type": "attribute"} for n, m in problems
                ]
            },
        )


def event_of(req: FraudCheckRequest) -> dict[str, Any]:
    """The transaction as the online engine reads it (``ts`` in epoch seconds)."""
    event: dict[str, Any] = dict(req.attributes or {})
    event.update(
        txn_id=req.txn_id,
        card_token=req.card_token,
        terminal_id=req.terminal_id,
        ts=int(req.timestamp.astimezone(UTC).timestamp()),
        amount=float(req.amount),
        currency=req.currency,
    )
    for name in REQUEST_FIELDS:
        event[name] = getattr(req, name)
    return event


class PlanCheck:
    """One check's state under a plan: the keys to read, then the features and the states to write."""

    def __init__(self, plan: ServingPlan, req: FraudCheckRequest) -> None:
        self.plan = plan
        self.event = event_of(req)
        self.keys = plan.engine.state_keys(self.event)
        self.read_keys = [k for k in self.keys if k is not None]
        self.counts = InputCounts()
        self._states: list[EntityState | None] = []

    def features(self, raws: Sequence[bytes | None] | None) -> list[float]:
        """The vector from the states read (None: the cache failed, every entity starts empty)."""
        by_key = dict(zip(self.read_keys, raws or [None] * len(self.read_keys), strict=True))
        self._states = self.plan.engine.load(
            [by_key.get(k) if k else None for k in self.keys], self.keys, self.counts
        )
        vector = self.plan.engine.compute(self.event, self._states, self.counts)
        self._vector = vector
        return vector

    def new_states(self) -> dict[str, bytes]:
        """Each entity's state with this transaction appended, by cache key."""
        self.plan.engine.observe(self.event, self._vector, self._states)
        return {
            k: s.to_bytes()
            for k, s in zip(self.keys, self._states, strict=True)
            if k is not None and s is not None
        }

    def label_keys(self) -> list[str]:
        """The states this transaction is appended to that keep outcomes (delayed-label risk)."""
        groups = self.plan.engine.groups
        return [k for g, k in zip(groups, self.keys, strict=True) if g.labels and k is not None]


def readable_reasons(reasons: list[dict[str, Any]], readable: Mapping[str, str]) -> list[dict[str, Any]]:
    """Reason texts that say the tenant's own label for a feature instead of its name."""
    out = []
    for r in reasons:
        label = readable.get(str(r.get("feature")))
        text = str(r.get("text", ""))
        if label and text.startswith(str(r["feature"])):
            r = {**r, "text": label + text[len(str(r["feature"])) :]}
        out.append(r)
    return out
