"""Feature-set documents: validated, versioned, tenant-scoped; immutable once a model trained on one.

``PUT`` of a name stores the document as that name's newest version and makes it the tenant's
active set: the same document again changes nothing; a different one replaces the newest version
while no model was trained on it, and otherwise becomes a new version.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_plane import events
from control_plane.audit import service as audit
from control_plane.datasets.feature_set_orm import FeatureSetVersion
from control_plane.errors import InvalidInput, NotFound
from control_plane.ids import new_id
from control_plane.outbox import emit
from fraud_model.feature_sets import FeatureSet, FeatureSetError, parse_feature_set


def document_sha256(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse_or_422(document: Any, name: str) -> FeatureSet:
    """The parsed set, or a 422 naming the first bad path (every problem listed in ``errors``)."""
    try:
        return parse_feature_set(document, name=name)
    except FeatureSetError as exc:
        first_path, first_message = exc.errors[0]
        raise InvalidInput(
            f"{first_path}: {first_message}"
            + (f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""),
            field=f"document.{first_path}" if first_path != "$" else "document",
            extra={
                "errors": [
                    {"field": f"document.{p}", "message": m, "type": "feature_set"} for p, m in exc.errors
                ]
            },
        ) from exc


def put(
    session: Session, tenant_id: str, name: str, document: Any, actor: str
) -> tuple[FeatureSetVersion, bool]:
    """Store ``document`` under ``name`` and activate it; (the version, whether it is a new version)."""
    if isinstance(document, dict) and document.get("name") not in (None, name):
        raise InvalidInput(
            f"the document names {document.get('name')!r}; the path names {name!r}", field="document.name"
        )
    parse_or_422(document, name)
    digest = document_sha256(document)
    latest = session.scalar(
        select(FeatureSetVersion)
        .where(FeatureSetVersion.tenant_id == tenant_id, FeatureSetVersion.name == name)
        .order_by(FeatureSetVersion.version.desc())
        .limit(1)
    )
    created = False
    if latest is not None and latest.sha256 == digest:
        row = latest
    elif latest is not None and not latest.locked:
        row = latest
        row.document, row.sha256, row.created_by = document, digest, actor
    else:
        row = FeatureSetVersion(
            id=new_id("fs")[:40],
            tenant_id=tenant_id,
            name=name,
            version=(latest.version + 1) if latest else 1,
            document=document,
            sha256=digest,
            locked=False,
            active=False,
            created_by=actor,
        )
        session.add(row)
        created = True
    session.execute(
        update(FeatureSetVersion)
        .where(FeatureSetVersion.tenant_id == tenant_id, FeatureSetVersion.id != row.id)
        .values(active=False)
    )
    row.active = True
    session.flush()
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="feature_set.stored",
        subject=row.label,
        after={"sha256": digest, "new_version": created},
    )
    # Checks validate attributes against the active set: every serving process reloads it.
    emit(session, events.SERVING_CHANGED, {"tenant_id": tenant_id, "reason": "feature set"})
    return row, created


def get(session: Session, tenant_id: str, name: str, version: int | None = None) -> FeatureSetVersion:
    stmt = select(FeatureSetVersion).where(
        FeatureSetVersion.tenant_id == tenant_id, FeatureSetVersion.name == name
    )
    stmt = stmt.where(FeatureSetVersion.version == version) if version is not None else stmt
    row = session.scalar(stmt.order_by(FeatureSetVersion.version.desc()).limit(1))
    if row is None:
        what = f"feature set {name}" + (f" version {version}" if version is not None else "")
        raise NotFound(f"{what} not found", field="name")
    return row


def list_for(session: Session, tenant_id: str) -> list[FeatureSetVersion]:
    stmt = (
        select(FeatureSetVersion)
        .where(FeatureSetVersion.tenant_id == tenant_id)
        .order_by(FeatureSetVersion.name, FeatureSetVersion.version)
    )
    return list(session.scalars(stmt))


def active(session: Session, tenant_id: str) -> FeatureSetVersion | None:
    return session.scalar(
        select(FeatureSetVersion).where(
            FeatureSetVersion.tenant_id == tenant_id, FeatureSetVersion.active.is_(True)
        )
    )


def by_id(session: Session, tenant_id: str, feature_set_id: str) -> FeatureSetVersion:
    row = session.get(FeatureSetVersion, feature_set_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"feature set {feature_set_id} not found", field="feature_set")
    return row


def compiled(row: FeatureSetVersion) -> FeatureSet:
    return parse_feature_set(row.document, name=row.name)


def feature_set_payload(session: Session, tenant_id: str) -> dict[str, Any]:
    """What a training run needs of the tenant's active set, fixed when the run is queued."""
    row = active(session, tenant_id)
    if row is None:
        return {}
    return {"feature_set": {"id": row.id, "name": row.name, "label": row.label, "document": row.document}}


def lock_feature_set(session: Session, tenant_id: str, payload: Any) -> None:
    """A model was trained on this version: it can never change again (a new PUT makes a new version)."""
    if not isinstance(payload, dict) or not payload.get("id"):
        return
    row = session.get(FeatureSetVersion, str(payload["id"]))
    if row is not None and row.tenant_id == tenant_id:
        row.locked = True
