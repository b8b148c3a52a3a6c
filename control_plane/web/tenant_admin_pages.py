"""Pages for tenant admins over what the API already does (read side): models with lineage and
metrics. Other tenants' rows never load (every query starts from the viewer's tenant); another
scope gets a 403 page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from control_plane.db import unit_of_work
from control_plane.registry import service as registry
from control_plane.web.pages import ConsoleDep, error_page, redirect, render, viewer_of

router = APIRouter(include_in_schema=False)
# The gate's metrics, as the registry names them, with what a person calls them.
METRICS = (
    ("auc_roc", "AUC ROC"),
    ("average_precision", "Average precision"),
    ("card_precision_at_100", "Card precision @100"),
)


@router.get("/admin/models")
def models_page(request: Request, c: ConsoleDep) -> Response:
    viewer = viewer_of(request, c)
    if viewer is None:
        return redirect("/console/sign-in")
    if not viewer.is_admin:
        return error_page(request, viewer, 403, "Forbidden", "Models are shown to tenant admins.")
    with unit_of_work(c.factory) as session:
        versions = [
            {
                "id": m.id,
                "stage": m.stage,
                "created_at": m.created_at,
                "metrics": [(label, m.metrics.get(key)) for key, label in METRICS],
                "rows": (m.metrics.get("train_rows"), m.metrics.get("test_rows")),
                "gate": m.gate or {},
                "dataset": (m.dataset_id, (m.dataset_sha256 or "")[:12]),
                "training_job_id": m.training_job_id,
                "feature_set_version": m.feature_set_version,
                "code_version": m.code_version,
                "algorithm": (m.params or {}).get("algorithm", "xgboost"),
                "analyst_labels": m.analyst_labels,
                "approved_by": m.approved_by,
                "sha256": m.sha256[:12],
            }
            for m in registry.list_for(session, viewer.tenant_id, stage=None)
        ]
    context = {"viewer": viewer, "versions": versions, "section": "models"}
    return render(request, "models.html", context)
