"""The online feature path: bounded per-card and per-terminal state, O(1) amortised per event.

Each state keeps its events in time order within a horizon and, per window, the index of the
window's first event and the window's running integer sum, so advancing the clock only moves
pointers forward. Sums are exact integers (amounts in 1/10,000 units, fraud counts), so the
numbers equal :func:`fraud_model.features.batch_features` bit for bit on a replayed stream.

Events are expected per card and per terminal in non-decreasing time. A late event is still
accepted: it is inserted in order and the windows are rebuilt (O(history)); its own features
are then exact only while the history it needs is still inside the horizon.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fraud_model.features import (
    CARD_HORIZON_S,
    DAY_S,
    DEFAULT_DELAY_DAYS,
    FEATURE_NAMES,
    HOUR_S,
    NIGHT_LAST_HOUR,
)
from fraud_model.online_card import CardState, card_features, observe_card
from fraud_model.online_event import UNKNOWN_LABEL, TransactionEvent
from fraud_model.online_terminal import TerminalState, apply_label, observe_terminal, terminal_features


def transaction_features(
    card: CardState, terminal: TerminalState, txn: TransactionEvent, delay_days: int = DEFAULT_DELAY_DAYS
) -> list[float]:
    """All FEATURE_NAMES of ``txn``, in order, from the two states (which are not appended to)."""
    c = card_features(card, txn)
    term = terminal_features(terminal, txn, delay_days)
    days = txn.ts_s // DAY_S
    hour = (txn.ts_s % DAY_S) // HOUR_S
    weekend = 1.0 if (days + 3) % 7 >= 5 else 0.0
    night = 1.0 if hour <= NIGHT_LAST_HOUR else 0.0
    return [txn.amount, weekend, night, *c[:6], *term, *c[6:]]


class FeatureStateStore(Protocol):
    """Where online feature state lives (an in-process dict, or the control plane's cache)."""

    def get_card(self, card_token: str) -> CardState | None: ...
    def put_card(self, card_token: str, state: CardState) -> None: ...
    def get_terminal(self, terminal_id: str) -> TerminalState | None: ...
    def put_terminal(self, terminal_id: str, state: TerminalState) -> None: ...


class InMemoryFeatureStateStore:
    """Keeps live state objects in dicts (one process; no serialisation)."""

    def __init__(self) -> None:
        self.cards: dict[str, CardState] = {}
        self.terminals: dict[str, TerminalState] = {}

    def get_card(self, card_token: str) -> CardState | None:
        return self.cards.get(card_token)

    def put_card(self, card_token: str, state: CardState) -> None:
        self.cards[card_token] = state

    def get_terminal(self, terminal_id: str) -> TerminalState | None:
        return self.terminals.get(terminal_id)

    def put_terminal(self, terminal_id: str, state: TerminalState) -> None:
        self.terminals[terminal_id] = state


class OnlineFeatureComputer:
    """Features for one transaction at a time, reading and writing state through a store."""

    def __init__(self, store: FeatureStateStore, *, delay_days: int = DEFAULT_DELAY_DAYS) -> None:
        if delay_days < 1:
            raise ValueError("delay_days must be at least 1")
        self.store = store
        self.delay_days = delay_days

    def compute(self, txn: TransactionEvent, *, observe: bool = True, label: int | None = None) -> np.ndarray:
        """The feature vector (FEATURE_NAMES order); then, unless ``observe`` is False, record it."""
        card = self.store.get_card(txn.card_token) or CardState()
        terminal = self.store.get_terminal(txn.terminal_id) or TerminalState(delay_s=self.delay_days * DAY_S)
        vector = np.asarray(transaction_features(card, terminal, txn, self.delay_days), dtype=np.float64)
        if observe:
            observe_card(card, txn)
            observe_terminal(terminal, txn, label)
            self.store.put_card(txn.card_token, card)
            self.store.put_terminal(txn.terminal_id, terminal)
        return vector

    def record_label(self, terminal_id: str, txn_id: str, label: int) -> bool:
        """Feed a known outcome (chargeback, analyst verdict) into the terminal's risk windows."""
        state = self.store.get_terminal(terminal_id)
        if state is None or not apply_label(state, txn_id, label):
            return False
        self.store.put_terminal(terminal_id, state)
        return True


def as_feature_dict(vector: np.ndarray | list[float]) -> dict[str, float]:
    return {name: float(v) for name, v in zip(FEATURE_NAMES, vector, strict=True)}


__all__ = [
    "CARD_HORIZON_S",
    "UNKNOWN_LABEL",
    "CardState",
    "FeatureStateStore",
    "InMemoryFeatureStateStore",
    "OnlineFeatureComputer",
    "TerminalState",
    "TransactionEvent",
    "apply_label",
    "as_feature_dict",
    "card_features",
    "observe_card",
    "observe_terminal",
    "terminal_features",
    "transaction_features",
]
