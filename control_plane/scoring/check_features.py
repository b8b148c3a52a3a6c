"""One check's features: the built-in handbook path (card and terminal state) or a tenant's plan;
pure computation on the states the cache returned, shared by the sync and async checks."""

from __future__ import annotations

from control_plane.scoring.label_feed import index_entry
from control_plane.scoring.schemas import FraudCheckRequest
from control_plane.scoring.serving import TenantServing
from control_plane.scoring.tenant_features import PlanCheck
from fraud_model.features import FEATURE_NAMES, terminal_horizon_s
from fraud_model.online_features import (
    CardState,
    TerminalState,
    TransactionEvent,
    observe_card,
    observe_terminal,
    transaction_features,
)

TERMINAL_TTL_S = terminal_horizon_s() + 86_400


def plan_label(tenant: TenantServing, version: str | None) -> str | None:
    plan = tenant.plans.get(version) if version is not None else None
    return None if plan is None else plan.label


class CheckFeatures:
    """One check's features: the built-in handbook path (card and terminal state) or a tenant plan."""

    def __init__(self, req: FraudCheckRequest, plan: PlanCheck | None) -> None:
        self.plan = plan
        if plan is None:
            self.event = TransactionEvent(
                req.txn_id, req.card_token, req.terminal_id, int(req.timestamp.timestamp()), float(req.amount)
            )
            self.read_keys = [f"card:{req.card_token}", f"term:{req.terminal_id}"]
            self.names: tuple[str, ...] = FEATURE_NAMES
            self.ttl_s = TERMINAL_TTL_S
        else:
            self.read_keys = plan.read_keys
            self.names = plan.plan.names
            self.ttl_s = max(TERMINAL_TTL_S, plan.plan.engine.horizon_s + 86_400)

    def compute(self, raws: list[bytes | None] | None) -> list[float]:
        if self.plan is not None:
            return self.plan.features(raws)
        card_raw, term_raw = raws if raws is not None else (None, None)
        self.card = CardState.from_bytes(card_raw) if card_raw else CardState()
        self.terminal = TerminalState.from_bytes(term_raw) if term_raw else TerminalState()
        vector = transaction_features(self.card, self.terminal, self.event)
        observe_card(self.card, self.event)
        observe_terminal(self.terminal, self.event)
        return vector

    def new_states(self) -> dict[str, bytes]:
        if self.plan is not None:
            # With the states, where a later label must go (scoring/label_feed.py), same TTL.
            index = index_entry(self.plan.event["txn_id"], self.plan.label_keys(), self.ttl_s)
            return {**self.plan.new_states(), **index}
        return {self.read_keys[0]: self.card.to_bytes(), self.read_keys[1]: self.terminal.to_bytes()}
