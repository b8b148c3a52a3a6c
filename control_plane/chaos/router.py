"""Game-day fault injection (development only): make one model version fail or slow down.

Lets an SRE rehearse the canary → alarm → rollback path against the embedded model host.
Refused outside FRAUDRAIL_ENV=development and for any key but a platform admin's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from control_plane.deps import ModelHostDep, PlatformAdminDep, SettingsDep
from control_plane.errors import Conflict, Forbidden
from providers.ports import ModelFaultInjection

router = APIRouter(prefix="/v1/chaos", tags=["chaos"])


class ModelFault(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: str = Field(min_length=1, max_length=40)
    version_id: str = Field(min_length=1, max_length=40)
    error: bool = False
    delay_ms: float = Field(default=0.0, ge=0, le=10_000)


def _faults(settings: SettingsDep, host: ModelHostDep) -> ModelFaultInjection:
    if settings.env != "development":
        raise Forbidden("fault injection is only available with FRAUDRAIL_ENV=development")
    if not isinstance(host, ModelFaultInjection):
        raise Conflict("this model host cannot inject faults (the embedded one can)", field="provider")
    return host


FaultsDep = Annotated[ModelFaultInjection, Depends(_faults)]


@router.post("/model-faults", status_code=204)
def inject_model_fault(body: ModelFault, faults: FaultsDep, _: PlatformAdminDep) -> None:
    faults.inject_fault(body.tenant_id, body.version_id, error=body.error, delay_ms=body.delay_ms)


@router.delete("/model-faults", status_code=204)
def clear_model_faults(faults: FaultsDep, _: PlatformAdminDep) -> None:
    faults.clear_faults()
