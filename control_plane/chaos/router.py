"""Game-day fault injection (development only): make one model version fail or slow down.

Lets an SRE rehearse the canary → alarm → rollback path against the embedded model host.
Refused outside FRAUDRAIL_ENV=development and for any key but a platform admin's.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from control_plane.deps import ContainerDep, PlatformAdminDep
from control_plane.errors import Conflict, Forbidden
from providers.local.model_host import LocalModelHost

router = APIRouter(prefix="/v1/chaos", tags=["chaos"])


class ModelFault(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str = Field(min_length=1, max_length=40)
    version_id: str = Field(min_length=1, max_length=40)
    error: bool = False
    delay_ms: float = Field(default=0.0, ge=0, le=10_000)


def _host(c: ContainerDep) -> LocalModelHost:
    if c.settings.env != "development":
        raise Forbidden("fault injection is only available with FRAUDRAIL_ENV=development")
    host = c.providers.model_host
    if not isinstance(host, LocalModelHost):
        raise Conflict("fault injection needs the embedded model host", field="provider")
    return host


@router.post("/model-faults", status_code=204)
def inject_model_fault(body: ModelFault, c: ContainerDep, _: PlatformAdminDep) -> None:
    _host(c).inject_fault(body.tenant_id, body.version_id, error=body.error, delay_ms=body.delay_ms)


@router.delete("/model-faults", status_code=204)
def clear_model_faults(c: ContainerDep, _: PlatformAdminDep) -> None:
    _host(c).clear_faults()
