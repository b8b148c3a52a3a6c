"""Onboarding through the API: policy gate, lifecycle, provisioning, audit, bad input."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from control_plane.tenants.orm import Tenant
from tests.control_plane.conftest import OnboardFn, auth, tenant_body


def tenant_count(container: State) -> int:
    with container.factory() as s:
        return int(s.scalar(select(func.count()).select_from(Tenant)) or 0)


def test_onboarding_reaches_active_with_resources_and_audit(
    client: TestClient, admin_key: str, worker: Worker, container: State
) -> None:
    resp = client.post("/v1/tenants", json=tenant_body("acme-pay"), headers=auth(admin_key))
    assert resp.status_code == 202, resp.text
    created = resp.json()
    tenant_id = created["tenant"]["id"]
    assert tenant_id.startswith("ten_")
    assert created["tenant"]["status"] == "REQUESTED"
    assert created["tenant"]["budget"] == {"amount": "2500.00", "currency": "USD"}
    assert created["admin_key"]["scope"] == "tenant-admin"

    assert worker.drain() == 1
    tenant_admin = created["admin_key"]["key"]
    got = client.get(f"/v1/tenants/{tenant_id}", headers=auth(tenant_admin)).json()
    assert got["status"] == "ACTIVE"
    assert got["provisioning"]["resources"] == [
        f"object_store:tenants/{tenant_id}/",
        f"cache_namespace:{tenant_id}",
        "model_slot:pooled",
    ]
    job = client.get(f"/v1/jobs/{created['provisioning_job_id']}", headers=auth(tenant_admin)).json()
    assert job["status"] == "succeeded"
    assert job["progress"]["percent"] == 100.0

    p = container.providers
    assert p.object_store.exists(f"tenants/{tenant_id}/.tenant")
    assert [s.kind for s in p.model_host.slots(tenant_id)] == ["pooled"]

    events = client.get(f"/v1/tenants/{tenant_id}/audit", headers=auth(tenant_admin)).json()
    actions = [e["action"] for e in events]
    assert actions[0] == "tenant.requested"
    assert "tenant.provisioning" in actions and actions[-1] == "tenant.active"
    provisioning = next(e for e in events if e["action"] == "tenant.provisioning")
    assert (
        provisioning["before"]["status"] == "REQUESTED" and provisioning["after"]["status"] == "PROVISIONING"
    )


def test_policy_denial_lists_every_violation_and_writes_nothing(
    client: TestClient, admin_key: str, container: State
) -> None:
    body = tenant_body(
        "acme-pay", tier="trial", region="ap-south-1", budget={"amount": "999999.00", "currency": "USD"}
    )
    resp = client.post("/v1/tenants", json=body, headers=auth(admin_key))
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    fields = {v["field"] for v in problem["violations"]}
    assert {"region", "budget.amount"} <= fields
    assert "ap-south-1" in problem["detail"]
    assert tenant_count(container) == 0


def test_premium_needs_a_notification_contact(client: TestClient, admin_key: str) -> None:
    body = tenant_body("bigbank", tier="premium", contacts={"email": "sec@bigbank.example"})
    resp = client.post("/v1/tenants", json=body, headers=auth(admin_key))
    assert resp.status_code == 422
    assert any(v["field"].startswith("contacts") for v in resp.json()["violations"])


def test_unknown_tier_and_bad_slug_are_named(client: TestClient, admin_key: str) -> None:
    resp = client.post("/v1/tenants", json=tenant_body("Bad_Slug!", tier="platinum"), headers=auth(admin_key))
    assert resp.status_code == 422
    fields = {v["field"] for v in resp.json()["violations"]}
    assert {"tier", "slug"} <= fields


def test_bad_input_is_4xx_naming_the_field(client: TestClient, admin_key: str, container: State) -> None:
    h = {**auth(admin_key), "content-type": "application/json"}
    malformed = client.post("/v1/tenants", content=b'{"name": "x",', headers=h)
    assert malformed.status_code == 422
    assert malformed.json()["title"] == "Invalid input"

    wrong_type = client.post(
        "/v1/tenants", json=tenant_body(budget={"amount": "lots", "currency": "USD"}), headers=auth(admin_key)
    )
    assert wrong_type.status_code == 422
    assert wrong_type.json()["field"] == "budget.amount"

    unknown_field = client.post("/v1/tenants", json={**tenant_body(), "owner": "me"}, headers=auth(admin_key))
    assert unknown_field.status_code == 422 and unknown_field.json()["field"] == "owner"

    bad_url = client.post(
        "/v1/tenants", json=tenant_body(contacts={"slack_webhook_url": "not a url"}), headers=auth(admin_key)
    )
    assert bad_url.status_code == 422 and bad_url.json()["field"] == "contacts.slack_webhook_url"

    huge = client.post("/v1/tenants", json=tenant_body(name="x" * 100_000), headers=auth(admin_key))
    assert huge.status_code == 413 and huge.json()["field"] == "body"

    not_object = client.post("/v1/tenants", json=[1, 2], headers=auth(admin_key))
    assert not_object.status_code == 422
    assert tenant_count(container) == 0


def test_duplicate_slug_conflicts(client: TestClient, admin_key: str, onboard: OnboardFn) -> None:
    onboard("acme-pay")
    resp = client.post("/v1/tenants", json=tenant_body("acme-pay"), headers=auth(admin_key))
    assert resp.status_code == 409 and resp.json()["field"] == "slug"


def test_only_platform_admin_onboards(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("acme-pay")
    assert client.post("/v1/tenants", json=tenant_body("other"), headers=auth(t["admin"])).status_code == 403
    assert client.post("/v1/tenants", json=tenant_body("other")).status_code == 401
    assert (
        client.post("/v1/tenants", json=tenant_body("other"), headers=auth("frk_nope.x")).status_code == 401
    )


def test_suspend_resume_and_illegal_transitions(
    client: TestClient, admin_key: str, onboard: OnboardFn
) -> None:
    t = onboard("acme-pay")
    base = f"/v1/tenants/{t['id']}"
    resumed_active = client.post(f"{base}/resume", headers=auth(admin_key))
    assert resumed_active.status_code == 409
    assert "ACTIVE" in resumed_active.json()["detail"]

    suspended = client.post(
        f"{base}/suspend", json={"reason": "budget", "note": "over budget"}, headers=auth(admin_key)
    )
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "SUSPENDED" and suspended.json()["suspension_reason"] == "budget"
    assert (
        client.post(f"{base}/suspend", json={"reason": "admin"}, headers=auth(admin_key)).status_code == 409
    )
    assert client.post(f"{base}/retry", headers=auth(admin_key)).status_code == 409
    bad_reason = client.post(f"{base}/suspend", json={"reason": "whim"}, headers=auth(admin_key))
    assert bad_reason.status_code == 422 and bad_reason.json()["field"] == "reason"

    resumed = client.post(f"{base}/resume", headers=auth(admin_key))
    assert resumed.json()["status"] == "ACTIVE" and resumed.json()["suspension_reason"] is None
    audit: list[dict[str, Any]] = client.get(f"{base}/audit", headers=auth(t["admin"])).json()
    suspension = next(e for e in audit if e["action"] == "tenant.suspended")
    assert suspension["actor"].startswith("key:") and suspension["reason"] == "over budget"
    assert suspension["before"]["status"] == "ACTIVE" and suspension["after"]["suspension_reason"] == "budget"


def test_unknown_tenant_is_404(client: TestClient, admin_key: str) -> None:
    resp = client.get("/v1/tenants/ten_doesnotexist", headers=auth(admin_key))
    assert resp.status_code == 404 and resp.json()["field"] == "tenant_id"
