"""What a retraining learns from: the tenant's stored traffic and every label source up to a cut-off.

The frame is the champion's own training dataset (when it had one) followed by every scored
transaction the dataset does not hold, before the cut-off. Labels, later sources winning:
the dataset's ``is_fraud``; delayed labels (``POST /v1/labels``: fraud / chargeback → 1, legit →
0) known by the cut-off; analysts' verdicts (the training run applies them itself). A scored
transaction nobody labelled counts as legit, as in the dataset and as online (an unreported
transaction is not fraud as far as anyone knows). The features are never taken from here: the
training run recomputes them with the one feature definition, which the parity test keeps equal
to what the online path computed.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from control_plane.datasets import service as datasets
from control_plane.datasets.orm import Dataset
from control_plane.monitoring.orm import ScoredTransaction, TransactionLabel
from control_plane.registry.orm import ModelVersion
from fraud_model import schema
from providers.ports import ObjectStore

FRAUD_LABELS = ("fraud", "chargeback")
COLUMNS = (schema.TXN_ID, schema.CARD_TOKEN, schema.TERMINAL_ID, schema.TS, schema.AMOUNT)


def first_scored(session: Session, tenant_id: str, *, before: datetime) -> datetime | None:
    return session.scalar(
        select(func.min(ScoredTransaction.ts)).where(
            ScoredTransaction.tenant_id == tenant_id, ScoredTransaction.ts < before
        )
    )


def stored_traffic(session: Session, tenant_id: str, cutoff: datetime) -> pd.DataFrame:
    """Scored transactions before the cut-off (``cutoff`` itself included) with their delayed label."""
    s = ScoredTransaction
    stmt = select(s.txn_id, s.card_token, s.terminal_id, s.ts, s.amount).where(
        s.tenant_id == tenant_id, s.ts <= cutoff
    )
    frame = pd.DataFrame(session.execute(stmt).all(), columns=list(COLUMNS))
    frame[schema.TS] = schema.to_utc(frame[schema.TS])
    frame[schema.AMOUNT] = frame[schema.AMOUNT].astype(np.float64)
    return frame


def delayed_labels(session: Session, tenant_id: str, cutoff: datetime) -> dict[str, int]:
    """txn_id → 1 / 0 from every label source known by the cut-off (any fraud source wins)."""
    is_fraud = case((TransactionLabel.label.in_(FRAUD_LABELS), 1), else_=0)
    stmt = (
        select(TransactionLabel.txn_id, func.max(is_fraud))
        .where(TransactionLabel.tenant_id == tenant_id, TransactionLabel.known_at <= cutoff)
        .group_by(TransactionLabel.txn_id)
    )
    return {txn_id: int(v) for txn_id, v in session.execute(stmt)}


def training_frame(
    session: Session,
    store: ObjectStore,
    tenant_id: str,
    champion: ModelVersion,
    cutoff: datetime,
    *,
    until: datetime | None = None,
) -> tuple[pd.DataFrame, set[str], dict[str, int]]:
    """(frame sorted by time, txn_ids the champion trained or was tested on, figures).

    Labels are those known by ``cutoff``; rows end at ``until`` (default: the cut-off), so the
    last days, whose labels have not had time to arrive, are neither learnt nor judged on."""
    until = cutoff if until is None else until
    parts: list[pd.DataFrame] = []
    champion_ids: set[str] = set()
    if champion.dataset_id:
        dataset = session.get(Dataset, champion.dataset_id)
        if dataset is not None and dataset.tenant_id == tenant_id:
            own = datasets.load_frame(store, dataset)
            own[schema.TS] = schema.to_utc(own[schema.TS])
            own = own[own[schema.TS] <= until]
            champion_ids = set(own[schema.TXN_ID])
            parts.append(own[[*COLUMNS, schema.IS_FRAUD]])
    traffic = stored_traffic(session, tenant_id, until)
    traffic = traffic[~traffic[schema.TXN_ID].isin(champion_ids)].copy()
    traffic[schema.IS_FRAUD] = 0
    parts.append(traffic)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    labels = delayed_labels(session, tenant_id, cutoff)
    mapped = frame[schema.TXN_ID].map(labels)
    frame.loc[mapped.notna(), schema.IS_FRAUD] = mapped[mapped.notna()].astype("int64")
    frame[schema.IS_FRAUD] = frame[schema.IS_FRAUD].astype("int64")
    frame[schema.CURRENCY] = schema.DEFAULT_CURRENCY
    frame = frame.sort_values([schema.TS, schema.TXN_ID], kind="stable").reset_index(drop=True)
    figures = {
        "rows": len(frame),
        "dataset_rows": len(champion_ids),
        "stored_traffic_rows": len(traffic),
        "delayed_labels_used": int(mapped.notna().sum()),
        "fraud": int(frame[schema.IS_FRAUD].sum()),
    }
    return frame, champion_ids, figures


def store_dataset(
    session: Session,
    store: ObjectStore,
    *,
    tenant_id: str,
    dataset_id: str,
    frame: pd.DataFrame,
    name: str,
    actor: str,
) -> Dataset:
    """Keep the frame as a dataset (lineage: the challenger's version names it and its SHA-256)."""
    existing = session.get(Dataset, dataset_id)
    if existing is not None:
        return existing
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    key = f"tenants/{tenant_id}/datasets/{dataset_id}.parquet"
    store.put(key, data)
    ts = frame[schema.TS]
    dataset = Dataset(
        id=dataset_id,
        tenant_id=tenant_id,
        name=name,
        source_format="parquet",
        rows=len(frame),
        sha256=hashlib.sha256(data).hexdigest(),
        object_key=key,
        label_rate=float(frame[schema.IS_FRAUD].mean()) if len(frame) else None,
        ts_min=ts.min().to_pydatetime() if len(frame) else None,
        ts_max=ts.max().to_pydatetime() if len(frame) else None,
        report={"ok": True, "rows": len(frame), "checks": [], "source": "stored traffic + labels"},
        created_by=actor[:80],
    )
    session.add(dataset)
    return dataset
