"""Feature-set routes: declare a tenant's attributes and features (JSON or YAML), read them back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
import yaml  # type: ignore[import-untyped]
from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel

from control_plane.auth.scopes import Scope
from control_plane.datasets import feature_sets as service
from control_plane.datasets.feature_set_orm import FeatureSetVersion
from control_plane.deps import PrincipalDep, SessionDep
from control_plane.errors import InvalidInput
from control_plane.tenancy import tenant_of

router = APIRouter(prefix="/v1/feature-sets", tags=["feature-sets"])
READERS = {Scope.TENANT_ADMIN, Scope.SRE, Scope.ANALYST}
MAX_DOCUMENT_BYTES = 512 * 1024
NamePath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="The feature set's name")]
_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The feature-set document (docs/features.md), as JSON or YAML",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "object"}},
        },
    }
}


class FeatureSetOut(BaseModel):
    id: str
    name: str
    version: int
    label: str
    active: bool
    locked: bool
    sha256: str
    document: dict[str, Any]
    feature_names: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


def feature_set_out(row: FeatureSetVersion) -> FeatureSetOut:
    names = [str(f.get("name")) for f in row.document.get("features", []) if isinstance(f, dict)]
    return FeatureSetOut(
        id=row.id,
        name=row.name,
        version=row.version,
        label=row.label,
        active=row.active,
        locked=row.locked,
        sha256=row.sha256,
        document=row.document,
        feature_names=names,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _decode(body: bytes, content_type: str) -> Any:
    if len(body) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes", field="document")
    if not body.strip():
        raise InvalidInput("the document is empty", field="document")
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind in ("application/yaml", "application/x-yaml", "text/yaml"):
            return yaml.safe_load(body)
        return orjson.loads(body)
    except (yaml.YAMLError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"the document is not valid {'YAML' if 'yaml' in kind else 'JSON'}: {exc}", field="document"
        ) from exc


@router.put("/{name}", response_model=FeatureSetOut, openapi_extra=_DOCUMENT_BODY)
async def put_feature_set(
    name: NamePath, request: Request, response: Response, session: SessionDep, principal: PrincipalDep
) -> FeatureSetOut:
    """Store a feature set as the name's newest version and make it the tenant's active set.

    201 when a new version was created (the newest was locked by a trained model), 200 when the
    newest unlocked version was replaced or the document is unchanged. 422 names each bad path."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    document = _decode(await request.body(), request.headers.get("content-type", "application/json"))
    row, created = service.put(session, tenant_id, name, document, principal.actor)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return feature_set_out(row)


@router.get("", response_model=list[FeatureSetOut])
def list_feature_sets(session: SessionDep, principal: PrincipalDep) -> list[FeatureSetOut]:
    """Every version of every feature set of the tenant."""
    tenant_id = tenant_of(principal, READERS)
    return [feature_set_out(r) for r in service.list_for(session, tenant_id)]


@router.get("/{name}", response_model=FeatureSetOut)
def get_feature_set(
    name: NamePath,
    session: SessionDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> FeatureSetOut:
    """The newest version of a feature set, or ``?version=N``."""
    tenant_id = tenant_of(principal, READERS)
    return feature_set_out(service.get(session, tenant_id, name, version))
