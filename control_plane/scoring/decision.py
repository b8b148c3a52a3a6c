"""Pure decision logic shared by the online check and batch scoring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LEGIT, REVIEW, SUSPICIOUS = "LEGIT", "REVIEW", "SUSPICIOUS"


@dataclass(frozen=True)
class Policy:
    """What a tenant's decisions depend on besides the score."""

    review: float
    suspicious: float
    allow_cards: frozenset[str] = frozenset()
    block_cards: frozenset[str] = frozenset()
    allow_terminals: frozenset[str] = frozenset()
    block_terminals: frozenset[str] = frozenset()
    fallback: str = "none"  # none | rules


@dataclass(frozen=True)
class ListHit:
    decision: str | None
    reasons: list[dict[str, Any]] = field(default_factory=list)


def list_hit(policy: Policy, card_token: str, terminal_id: str) -> ListHit:
    """Block lists win over allow lists; both are named in the reasons."""
    reasons: list[dict[str, Any]] = []
    if card_token in policy.block_cards:
        reasons.append(_list_reason("BLOCKLIST_CARD", "card", "Card is on the tenant's block list"))
    if terminal_id in policy.block_terminals:
        reasons.append(
            _list_reason("BLOCKLIST_TERMINAL", "terminal", "Terminal is on the tenant's block list")
        )
    if reasons:
        return ListHit(SUSPICIOUS, reasons)
    if card_token in policy.allow_cards:
        reasons.append(_list_reason("ALLOWLIST_CARD", "card", "Card is on the tenant's allow list"))
    if terminal_id in policy.allow_terminals:
        reasons.append(
            _list_reason("ALLOWLIST_TERMINAL", "terminal", "Terminal is on the tenant's allow list")
        )
    return ListHit(LEGIT if reasons else None, reasons)


def _list_reason(code: str, feature: str, text: str) -> dict[str, Any]:
    return {"code": code, "feature": feature, "text": text, "contribution": 0.0}


def threshold_decision(score: float, policy: Policy) -> str:
    if score >= policy.suspicious:
        return SUSPICIOUS
    if score >= policy.review:
        return REVIEW
    return LEGIT


# Rules used when a tenant has no PRODUCTION model and chose the rules-only fallback. Each rule
# gives a score; the highest wins. They follow the handbook's fraud scenarios (large amounts,
# compromised terminals, card spend spikes) and card velocity.
RULES: Sequence[tuple[str, str, float, str]] = (
    ("RULE_AMOUNT_SPIKE", "card_amount_to_avg_30d", 5.0, "Amount is at least 5 times the card's 30-day mean"),
    ("RULE_TERMINAL_RISK", "terminal_risk_7d", 0.2, "Terminal had frauds confirmed in the last week"),
    ("RULE_CARD_VELOCITY", "card_nb_tx_1h", 5.0, "Five or more transactions on the card within an hour"),
    ("RULE_LARGE_AMOUNT", "amount", 1000.0, "Amount above 1,000"),
)
RULE_SCORES = {
    "RULE_AMOUNT_SPIKE": 0.85,
    "RULE_TERMINAL_RISK": 0.8,
    "RULE_CARD_VELOCITY": 0.6,
    "RULE_LARGE_AMOUNT": 0.55,
}


def rules_score(features: Mapping[str, float]) -> tuple[float, list[dict[str, Any]]]:
    """A transparent score from fixed rules (no model)."""
    score = 0.0
    reasons: list[dict[str, Any]] = []
    for code, feature, limit, text in RULES:
        value = float(features.get(feature, 0.0))
        if value >= limit:
            score = max(score, RULE_SCORES[code])
            reasons.append(
                {
                    "code": code,
                    "feature": feature,
                    "text": text,
                    "value": value,
                    "contribution": RULE_SCORES[code],
                }
            )
    return score, sorted(reasons, key=lambda r: -float(r["contribution"]))
