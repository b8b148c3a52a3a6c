"""Every event topic and its payload, in one module that imports nothing of ours.

A topic is ``broadcast`` (every process must see it: it refreshes per-process state such as the
serving registry, rate limits or the key cache) or ``work`` (exactly one consumer acts on it).
Payloads are plain JSON objects; the ``TypedDict`` next to each topic says what it carries.
Events are recorded in the caller's transaction with ``control_plane.outbox.emit`` and delivered
after the commit; only the flagged spool publishes directly (it is its own durable outbox).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Delivery = Literal["broadcast", "work"]

SERVING_CHANGED = "serving.changed"
FINOPS_LIMITS = "finops.limits"
KEYS_REVOKED = "keys.revoked"
FLAGGED_STORED = "flagged.stored"
LABEL_RECORDED = "label.recorded"
ROLLOUT_ALARM = "rollout.alarm"
BUDGET_THRESHOLD = "budget.threshold"
COST_ANOMALY = "cost.anomaly"
MODEL_STAGE_CHANGED = "model.stage_changed"

DELIVERY: dict[str, Delivery] = {
    SERVING_CHANGED: "broadcast",
    FINOPS_LIMITS: "broadcast",
    KEYS_REVOKED: "broadcast",
    FLAGGED_STORED: "work",
    LABEL_RECORDED: "work",
    ROLLOUT_ALARM: "work",
    BUDGET_THRESHOLD: "work",
    COST_ANOMALY: "work",
    MODEL_STAGE_CHANGED: "work",
}


class ServingChanged(TypedDict):
    """A tenant's serving state changed (promotion, config, lifecycle, rollout step)."""

    tenant_id: str
    reason: str


class LimitsChanged(TypedDict):
    """A tenant's rate limits changed (throttle, lift, tier change)."""

    tenant_id: str
    reason: str


class KeysRevoked(TypedDict):
    key_ids: list[str]


class LabelRecorded(TypedDict):
    """An analyst verdict that became a label (consumers key on ``label_id``)."""

    tenant_id: str
    txn_id: str
    card_token: str
    terminal_id: str
    label: int  # 1 fraud, 0 legit
    ts: str  # transaction time, ISO-8601 UTC
    label_id: str
    verdict: str
    review_id: str
    flagged_id: str
    decided_at: str


class RolloutAlarm(TypedDict):
    """A canary burned its budget or failed an analysis: the rollout must be aborted."""

    tenant_id: str
    rollout_id: str
    stable_version: str
    canary_version: str
    reason: str
    severity: NotRequired[str]
    evidence: NotRequired[dict[str, object]]


class BudgetThresholdCrossed(TypedDict):
    tenant_id: str
    month: str
    threshold: str


class CostAnomaly(TypedDict):
    tenant_id: str
    day: str


class ModelStageChanged(TypedDict):
    """A model version moved between registry stages (mirrored to the experiment tracker)."""

    tenant_id: str
    model_version: str
    stage: str
    previous_stage: str
