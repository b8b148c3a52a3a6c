"""Delayed labels (chargebacks, confirmed fraud, confirmed legit) and the performance they reveal.

A label is joined with what the tenant scored (``scored_transactions``, written by the monitoring
flush; flagged checks from before it are found in the review queue). A label for a txn_id the
tenant never scored is reported back, never silently dropped. Each new or changed label is
emitted as ``label.recorded`` through the outbox, so the label-risk features learn it as they
learn analyst verdicts: the built-in terminal risk and every label-risk entity of a tenant's
feature set (``control_plane/scoring/label_feed.py``).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from control_plane.errors import InvalidInput
from control_plane.events import LABEL_RECORDED
from control_plane.ids import new_id
from control_plane.monitoring import repository as repo
from control_plane.monitoring.orm import TransactionLabel
from control_plane.monitoring.schemas import (
    DayPerformance,
    DecisionPerformance,
    LabelIn,
    LabelsOut,
    PerformanceReport,
)
from control_plane.outbox import emit

FLAGGED = ("REVIEW", "SUSPICIOUS")
CSV_COLUMNS = ("txn_id", "label", "known_at")
MAX_CSV_ROWS = 10_000


def parse_csv(data: bytes) -> list[LabelIn]:
    """Rows of ``txn_id,label,known_at[,source]`` (a header line first); the first bad row is a 422
    naming its line and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the file is not UTF-8 text", field="file") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"the CSV header lacks {', '.join(missing)}", field="file")
    items: list[LabelIn] = []
    try:
        for line, row in enumerate(reader, start=2):
            if len(items) >= MAX_CSV_ROWS:
                raise InvalidInput(f"at most {MAX_CSV_ROWS} labels per file", field="file")
            fields = {k: row[k] for k in (*CSV_COLUMNS, "source") if row.get(k)}
            try:
                items.append(LabelIn.model_validate(fields))
            except ValidationError as exc:
                err = exc.errors()[0]
                column = ".".join(str(p) for p in err["loc"]) or "row"
                raise InvalidInput(f"line {line}, {column}: {err['msg']}", field=f"file.{column}") from exc
    except csv.Error as exc:
        raise InvalidInput(f"unreadable CSV: {exc}", field="file") from exc
    if not items:
        raise InvalidInput("the file holds no labels", field="file")
    return items


def record(session: Session, tenant_id: str, items: list[LabelIn], *, actor: str) -> LabelsOut:
    latest = {(i.txn_id, i.source): i for i in items}  # a repeat within one request: the last wins
    ids = sorted({t for t, _ in latest})
    scored = repo.scored(session, tenant_id, ids)
    flagged = repo.reviewed(session, tenant_id, [t for t in ids if t not in scored])
    unknown = [t for t in ids if t not in scored and t not in flagged]
    if len(unknown) == len(ids):
        raise InvalidInput(
            "none of these txn_ids was scored by this tenant: nothing recorded",
            field="items.0.txn_id",
            extra={"unknown_txn_ids": unknown[:1000]},
        )
    existing = repo.labels(session, tenant_id, ids)
    recorded = updated = unchanged = 0
    for (txn_id, source), item in latest.items():
        if txn_id in unknown:
            continue
        known_at = item.known_at.astimezone(UTC)
        row = existing.get((txn_id, source))
        if row is not None and row.label == item.label and row.known_at == known_at:
            unchanged += 1
            continue
        if row is None:
            session.add(
                TransactionLabel(
                    tenant_id=tenant_id,
                    txn_id=txn_id,
                    source=source,
                    label=item.label,
                    known_at=known_at,
                    recorded_by=actor[:80],
                    recorded_at=datetime.now(UTC),
                )
            )
            recorded += 1
        else:
            row.label, row.known_at, row.recorded_by = item.label, known_at, actor[:80]
            updated += 1
        emit(session, LABEL_RECORDED, _message(tenant_id, item, scored.get(txn_id), flagged.get(txn_id)))
    session.flush()
    return LabelsOut(recorded=recorded, updated=updated, unchanged=unchanged, unknown_txn_ids=unknown)


def _message(tenant_id: str, item: LabelIn, scored: Any, flagged: Any) -> dict[str, Any]:
    """The ``label.recorded`` payload (``control_plane.events.LabelRecorded``)."""
    txn = scored if scored is not None else flagged
    ts = txn.ts if scored is not None else flagged.txn_ts
    return {
        "tenant_id": tenant_id,
        "txn_id": item.txn_id,
        "card_token": txn.card_token,
        "terminal_id": txn.terminal_id,
        "label": 0 if item.label == "legit" else 1,
        "ts": ts.astimezone(UTC).isoformat(),
        "label_id": new_id("lbl"),
        "verdict": item.label,
        "review_id": flagged.id if flagged is not None else "",
        "flagged_id": flagged.flagged_id if flagged is not None else "",
        "decided_at": item.known_at.astimezone(UTC).isoformat(),
        "source": item.source,
    }


def performance(
    session: Session, tenant_id: str, *, version: str | None, days: int, end: date | None
) -> PerformanceReport:
    """Per day of transaction time: precision of the flags, recall, fraud amount caught / missed,
    and how many days of labels have arrived for that day (a young day is not a good day)."""
    latest_label = repo.latest_label(session, tenant_id)
    if end is None:
        last = repo.latest_scored(session, tenant_id, version)
        end = last.astimezone(UTC).date() if last is not None else datetime.now(UTC).date()
    stop = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    start = stop - timedelta(days=days)
    per_day: dict[date, list[Any]] = defaultdict(list)
    for row in repo.outcomes(session, tenant_id, version, start, stop):
        per_day[row.ts.astimezone(UTC).date()].append(row)
    out = [_day(day, rows, latest_label) for day, rows in sorted(per_day.items())]
    return PerformanceReport(model_version=version, latest_label_known_at=latest_label, days=out)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 6) if b else None


def _day(day: date, rows: list[Any], latest_label: datetime | None) -> DayPerformance:
    fraud = [r for r in rows if r.fraud == 1]
    by_decision = {
        d: (sum(1 for r in rows if r.decision == d), sum(1 for r in fraud if r.decision == d))
        for d in FLAGGED
    }
    flagged = sum(n for n, _ in by_decision.values())
    caught = sum(tp for _, tp in by_decision.values())
    maturity = 0 if latest_label is None else max((latest_label.astimezone(UTC).date() - day).days, 0)
    return DayPerformance(
        day=day,
        scored=len(rows),
        labelled=sum(1 for r in rows if r.fraud is not None),
        fraud=len(fraud),
        flagged=flagged,
        precision=_ratio(caught, flagged),
        recall=_ratio(caught, len(fraud)),
        review=DecisionPerformance(
            flagged=by_decision["REVIEW"][0],
            fraud=by_decision["REVIEW"][1],
            precision=_ratio(by_decision["REVIEW"][1], by_decision["REVIEW"][0]),
        ),
        suspicious=DecisionPerformance(
            flagged=by_decision["SUSPICIOUS"][0],
            fraud=by_decision["SUSPICIOUS"][1],
            precision=_ratio(by_decision["SUSPICIOUS"][1], by_decision["SUSPICIOUS"][0]),
        ),
        fraud_amount_caught=sum((Decimal(r.amount) for r in fraud if r.decision in FLAGGED), Decimal(0)),
        fraud_amount_missed=sum((Decimal(r.amount) for r in fraud if r.decision not in FLAGGED), Decimal(0)),
        label_maturity_days=maturity,
    )
