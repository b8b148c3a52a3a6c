"""Dataset upload: read, validate, and only then store (Parquet in the object store)."""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.datasets import feature_sets
from control_plane.datasets.orm import Dataset
from control_plane.errors import InvalidInput, NotFound
from control_plane.ids import new_id
from fraud_model import schema
from fraud_model.feature_sets.attributes import check_columns
from fraud_model.validation import Check, DatasetError, ValidationReport, read_table, validate_dataset
from providers.ports import ObjectStore

Format = Literal["csv", "parquet"]


def detect_format(filename: str | None, declared: str | None) -> Format:
    if declared in ("csv", "parquet"):
        return declared  # type: ignore[return-value]
    if declared:
        raise InvalidInput(f"format must be csv or parquet, got {declared!r}", field="format")
    suffix = Path(filename or "").suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InvalidInput(
        "cannot tell the file's format: name it .csv or .parquet, or pass format", field="format"
    )


def report_dict(report: ValidationReport) -> dict[str, Any]:
    return {"ok": report.ok, "rows": report.rows, "checks": [asdict(c) for c in report.checks]}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ingest(
    session: Session,
    store: ObjectStore,
    *,
    tenant_id: str,
    name: str,
    path: Path,
    fmt: Format,
    labeled: bool,
    actor: str,
) -> tuple[Dataset | None, ValidationReport]:
    """Validate the file; store it and record the dataset only when every check passes."""
    active = feature_sets.active(session, tenant_id)
    fs = feature_sets.compiled(active) if active is not None else None
    try:
        frame = read_table(path, fmt, extra_columns=tuple(fs.attributes) if fs else ())
    except DatasetError as exc:
        raise InvalidInput(exc.message, field=f"file.{exc.field}" if exc.field != "file" else "file") from exc
    report = validate_dataset(frame, require_labels=labeled)
    if fs is not None:  # the tenant's own columns, against its active feature set
        passed, detail, examples = check_columns(fs, frame)
        checks = [*report.checks, Check("feature_set_attributes", passed, detail, examples)]
        report = ValidationReport(ok=report.ok and passed, rows=report.rows, checks=checks)
    if not report.ok:
        return None, report
    frame = frame.sort_values(schema.TS, kind="stable").reset_index(drop=True)
    dataset_id = new_id("ds")
    key = f"tenants/{tenant_id}/datasets/{dataset_id}.parquet"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put(key, buffer.getvalue())
    label_rate = float(frame[schema.IS_FRAUD].mean()) if schema.IS_FRAUD in frame and len(frame) else None
    ts = frame[schema.TS]
    dataset = Dataset(
        id=dataset_id,
        tenant_id=tenant_id,
        name=name,
        source_format=fmt,
        rows=len(frame),
        sha256=file_sha256(path),
        object_key=key,
        label_rate=label_rate,
        ts_min=ts.min().to_pydatetime() if len(frame) else None,
        ts_max=ts.max().to_pydatetime() if len(frame) else None,
        report=report_dict(report),
        created_by=actor,
    )
    session.add(dataset)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="dataset.uploaded",
        subject=dataset_id,
        after={"rows": len(frame), "sha256": dataset.sha256, "label_rate": label_rate},
    )
    return dataset, report


def get(session: Session, tenant_id: str, dataset_id: str) -> Dataset:
    found = session.scalar(select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.id == dataset_id))
    if found is None:
        raise NotFound(f"dataset {dataset_id} not found", field="dataset_id")
    return found


def list_for(session: Session, tenant_id: str, limit: int = 100) -> list[Dataset]:
    stmt = (
        select(Dataset).where(Dataset.tenant_id == tenant_id).order_by(Dataset.created_at.desc()).limit(limit)
    )
    return list(session.scalars(stmt))


def load_frame(store: ObjectStore, dataset: Dataset) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.get(dataset.object_key)))
