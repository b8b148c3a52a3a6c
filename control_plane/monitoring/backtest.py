"""Backtests: a proposed change of thresholds and allow / block lists, replayed on the tenant's own
scored and labelled traffic, against the policy that is live now on the same window.

The replay uses the score each check got online (the features the online path computed, so
nothing is recomputed differently), and the same decision functions as the hot path
(``control_plane.scoring.decision``). With the live policy unchanged over the window the live
replay equals the answers given (``replay_mismatches`` counts where it does not: a configuration
changed inside the window, or a list hit). Replaying another *model version* needs every check's
features stored; that is not built yet, and such a proposal is refused naming the field.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import InvalidInput
from control_plane.monitoring import repository as repo
from control_plane.monitoring.schemas import BacktestDay, BacktestIn, BacktestOut, BacktestSide, Flip
from control_plane.scoring.decision import Policy, list_hit, threshold_decision
from control_plane.scoring.orm import ScoringConfig
from control_plane.scoring.serving import policy_from
from control_plane.tenants import repository as tenants

MAX_ROWS = 500_000
FLAGGED = ("REVIEW", "SUSPICIOUS")
LISTS = ("allow_cards", "block_cards", "allow_terminals", "block_terminals")


def proposed_policy(live: Policy, body: BacktestIn) -> Policy:
    if body.model_version is not None:
        raise InvalidInput(
            "replaying another model version needs the stored features of every check; "
            "backtests replay thresholds and allow / block lists for now",
            field="model_version",
        )
    changes: dict[str, Any] = {}
    if body.review_threshold is not None:
        changes["review"] = float(body.review_threshold)
    if body.suspicious_threshold is not None:
        changes["suspicious"] = float(body.suspicious_threshold)
    for name in LISTS:
        value = getattr(body, name)
        if value is not None:
            changes[name] = frozenset(value)
    if not changes:
        raise InvalidInput(
            "an empty proposal: give thresholds and / or allow / block lists to replay", field="proposal"
        )
    proposed = replace(live, **changes)
    if proposed.review > proposed.suspicious:
        raise InvalidInput("review_threshold must not exceed suspicious_threshold", field="review_threshold")
    return proposed


def decide(policy: Policy, score: float, card_token: str, terminal_id: str) -> str:
    return list_hit(policy, card_token, terminal_id).decision or threshold_decision(score, policy)


def run(
    session: Session, tenant_id: str, body: BacktestIn, templates: Mapping[str, Mapping[str, Any]]
) -> BacktestOut:
    tenant = tenants.get(session, tenant_id)
    live = policy_from(session.get(ScoringConfig, tenant_id), templates[tenant.tier])
    proposed = proposed_policy(live, body)
    end = body.end
    if end is None:
        last = repo.latest_scored(session, tenant_id, None)
        if last is None:
            raise InvalidInput("this tenant has scored no traffic to replay", field="days")
        end = last.astimezone(UTC).date()
    stop = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    rows = repo.replay_rows(session, tenant_id, stop - timedelta(days=body.days), stop, MAX_ROWS + 1)
    if not rows:
        raise InvalidInput(f"no scored traffic in the {body.days} days up to {end}", field="days")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(
            f"more than {MAX_ROWS} transactions in the window: ask for fewer days", field="days"
        )
    per_day: dict[Any, list[tuple[Any, str, str]]] = defaultdict(list)
    flips: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    mismatches = 0
    for r in rows:
        now = decide(live, float(r.score), r.card_token, r.terminal_id)
        new = decide(proposed, float(r.score), r.card_token, r.terminal_id)
        mismatches += now != r.decision
        per_day[r.ts.astimezone(UTC).date()].append((r, now, new))
        if now != new:
            flips[(now, new)] += 1
            if len(examples[(now, new)]) < 5:
                examples[(now, new)].append(r.txn_id)
    days = [
        BacktestDay(day=day, transactions=len(items), live=_side(items, 1), proposed=_side(items, 2))
        for day, items in sorted(per_day.items())
    ]
    all_items = [item for items in per_day.values() for item in items]
    return BacktestOut(
        window_start=stop - timedelta(days=body.days),
        window_end=stop,
        transactions=len(rows),
        labelled=sum(1 for r in rows if r.fraud is not None),
        live=_side(all_items, 1),
        proposed=_side(all_items, 2),
        flips=[
            Flip(from_decision=a, to_decision=b, count=n, examples=examples[(a, b)])
            for (a, b), n in sorted(flips.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        days=days,
        replay_mismatches=mismatches,
    )


def _side(items: list[tuple[Any, str, str]], which: int) -> BacktestSide:
    decisions = [(r, item[which]) for item in items for r in (item[0],)]
    fraud = [(r, d) for r, d in decisions if r.fraud == 1]
    flagged = sum(1 for _, d in decisions if d in FLAGGED)
    caught = [r for r, d in fraud if d in FLAGGED]
    return BacktestSide(
        flagged=flagged,
        review=sum(1 for _, d in decisions if d == "REVIEW"),
        suspicious=sum(1 for _, d in decisions if d == "SUSPICIOUS"),
        precision=round(len(caught) / flagged, 6) if flagged else None,
        recall=round(len(caught) / len(fraud), 6) if fraud else None,
        fraud_amount_caught=sum((Decimal(r.amount) for r in caught), Decimal(0)),
        fraud_amount_missed=sum((Decimal(r.amount) for r, d in fraud if d not in FLAGGED), Decimal(0)),
    )
