"""The tenant admins' models page: lineage and metrics of the tenant's own versions only,
refused to analysts, accessible in Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.registry.orm import ModelVersion
from control_plane.settings import REPO_ROOT
from tests.control_plane.conftest import OnboardFn
from tests.web.a11y import assert_accessible
from tests.web.console_signin import key_signed_in_page


def _version(tenant_id: str, version_id: str, *, passed: bool) -> ModelVersion:
    return ModelVersion(
        id=version_id,
        tenant_id=tenant_id,
        stage="CANDIDATE" if passed else "REJECTED",
        artifact_key=f"tenants/{tenant_id}/models/{version_id}.frm",
        sha256="ab" * 32,
        training_job_id="job_" + version_id,
        dataset_id="ds_" + version_id,
        dataset_sha256="cd" * 32,
        feature_set_version="fs1",
        code_version="c0ffee",
        params={"algorithm": "lightgbm"},
        metrics={"auc_roc": 0.8771, "average_precision": 0.5432, "train_rows": 9000, "test_rows": 1000},
        gate={
            "passed": passed,
            "failures": [] if passed else [{"metric": "auc_roc", "minimum": 0.9, "observed": 0.8771}],
        },
        analyst_labels=7,
    )


@pytest.fixture
def two_tenants(onboard: OnboardFn, container: State) -> tuple[dict[str, Any], dict[str, Any]]:
    a = onboard("alpha-co", scopes=("analyst",))
    b = onboard("beta-co", scopes=("analyst",))
    with unit_of_work(container.factory) as s:
        s.add(_version(a["id"], "mv_alpha1", passed=True))
        s.add(_version(b["id"], "mv_beta1", passed=False))
    return a, b


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _sign_in(client: TestClient, token: str) -> None:
    client.cookies.clear()
    page = client.get("/console/sign-in")
    resp = client.post(
        "/console/sign-in", data={"token": token, "csrf": _csrf(page.text)}, follow_redirects=False
    )
    assert resp.status_code == 303


def test_models_show_lineage_and_metrics_of_the_tenants_own_versions(
    client: TestClient, two_tenants: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    a, b = two_tenants
    assert client.get("/console/admin/models", follow_redirects=False).status_code == 303  # signed out
    _sign_in(client, a["admin"])
    page = client.get("/console/admin/models")
    assert page.status_code == 200
    assert 'data-model-id="mv_alpha1"' in page.text and "mv_beta1" not in page.text
    for shown in ("0.877", "0.543", "ds_mv_alpha1", "job_mv_alpha1", "lightgbm", "c0ffee", "9000 / 1000"):
        assert shown in page.text, shown
    assert "passed" in page.text
    _sign_in(client, b["admin"])
    other = client.get("/console/admin/models")
    assert "mv_alpha1" not in other.text and "failed: auc_roc 0.877 &lt; 0.9" in other.text
    _sign_in(client, a["analyst"])
    refused = client.get("/console/admin/models")
    assert refused.status_code == 403 and "mv_alpha1" not in refused.text


@pytest.mark.browser
def test_the_models_page_is_accessible(
    browser: Browser, live_server: str, two_tenants: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    a, _ = two_tenants
    context, page = key_signed_in_page(browser, live_server, a["admin"])
    page.goto("/console/admin/models")
    expect(page.get_by_test_id("models")).to_contain_text("mv_alpha1")
    assert_accessible(page)
    artifacts = REPO_ROOT / "var" / "test-artifacts" / "console"
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "models.png"), full_page=True)
    context.close()
