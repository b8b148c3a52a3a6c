"""Dataset routes: streamed, size-capped upload with a validation report before anything is stored."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from control_plane.auth.scopes import Scope
from control_plane.datasets import service
from control_plane.datasets.orm import Dataset
from control_plane.deps import ObjectStoreDep, PrincipalDep, SessionDep
from control_plane.errors import InvalidInput
from control_plane.http import PROBLEM
from control_plane.tenancy import tenant_of

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
READERS = {Scope.TENANT_ADMIN, Scope.SRE}


class DatasetOut(BaseModel):
    id: str
    name: str
    source_format: str
    rows: int
    sha256: str
    label_rate: float | None
    ts_min: datetime | None
    ts_max: datetime | None
    report: dict[str, Any]
    created_at: datetime


def dataset_out(d: Dataset) -> DatasetOut:
    return DatasetOut.model_validate(d, from_attributes=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetOut,
    responses={422: {"description": "The file failed validation: the failing checks with example rows"}},
)
def upload_dataset(
    session: SessionDep,
    store: ObjectStoreDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="CSV or Parquet in the transaction schema")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    format: Annotated[str | None, Form()] = None,
    labeled: Annotated[bool, Form()] = True,
) -> Any:
    """Upload transactions (streamed to disk, size-capped); stored only if every check passes."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    fmt = service.detect_format(file.filename, format)
    with tempfile.TemporaryDirectory(prefix="fraudrail-upload-") as tmp:
        path = Path(tmp) / f"upload.{fmt}"
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, length=1 << 20)
        if path.stat().st_size == 0:
            raise InvalidInput("the uploaded file is empty", field="file")
        dataset, report = service.ingest(
            session,
            store,
            tenant_id=tenant_id,
            name=name,
            path=path,
            fmt=fmt,
            labeled=labeled,
            actor=principal.actor,
        )
    if dataset is None:
        failing = [ch for ch in service.report_dict(report)["checks"] if not ch["passed"]]
        body = {
            "type": "https://fraudrail.dev/problems/422",
            "title": "Dataset failed validation",
            "status": 422,
            "detail": "; ".join(f"{ch['name']}: {ch['detail']}" for ch in failing),
            "field": "file",
            "failed_checks": failing,
            "report": service.report_dict(report),
        }
        return JSONResponse(body, status_code=422, media_type=PROBLEM)
    session.flush()
    return dataset_out(dataset)


@router.get("", response_model=list[DatasetOut])
def list_datasets(session: SessionDep, principal: PrincipalDep) -> list[DatasetOut]:
    tenant_id = tenant_of(principal, READERS)
    return [dataset_out(d) for d in service.list_for(session, tenant_id)]


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, session: SessionDep, principal: PrincipalDep) -> DatasetOut:
    tenant_id = tenant_of(principal, READERS)
    return dataset_out(service.get(session, tenant_id, dataset_id))
