"""PATCH /v1/tenants/{id}/contacts: validated like onboarding, audited, tenant-admin or platform admin."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.control_plane.conftest import OnboardFn, auth


def test_contacts_change_validated_like_onboarding_and_audited(
    client: TestClient, onboard: OnboardFn, admin_key: str
) -> None:
    t = onboard("contacts-co", scopes=("sre",))
    url = f"/v1/tenants/{t['id']}/contacts"
    new_slack = "https://hooks.slack.com/services/T/B/NEW"
    changed = client.patch(url, json={"slack_webhook_url": new_slack}, headers=auth(t["admin"]))
    assert changed.status_code == 200, changed.text
    assert changed.json()["contacts"] == {"slack_webhook_url": new_slack, "email": "ops@example.com"}

    insecure = client.patch(
        url, json={"teams_webhook_url": "http://teams.example/hook"}, headers=auth(t["admin"])
    )
    assert insecure.status_code == 422 and insecure.headers["content-type"] == "application/problem+json"
    assert insecure.json()["field"] == "contacts.teams_webhook_url"
    assert [v["rule"] for v in insecure.json()["violations"]] == ["webhook_url_insecure"]
    not_a_url = client.patch(url, json={"slack_webhook_url": "not a url"}, headers=auth(t["admin"]))
    assert not_a_url.status_code == 422 and not_a_url.json()["field"] == "slack_webhook_url"
    unknown = client.patch(url, json={"pager": "x"}, headers=auth(t["admin"]))
    assert unknown.status_code == 422 and unknown.json()["field"] == "pager"
    after = client.get(f"/v1/tenants/{t['id']}", headers=auth(t["admin"])).json()["contacts"]
    assert after == {"slack_webhook_url": new_slack, "email": "ops@example.com"}, "refusals change nothing"

    local = client.patch(
        url, json={"email": None, "teams_webhook_url": "http://127.0.0.1:9999/teams"}, headers=auth(admin_key)
    )
    assert local.status_code == 200, local.text
    assert local.json()["contacts"] == {
        "slack_webhook_url": new_slack,
        "teams_webhook_url": "http://127.0.0.1:9999/teams",
    }
    assert client.patch(url, json={"email": "x@example.com"}, headers=auth(t["sre"])).status_code == 403
    audit = client.get(f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"])).json()
    events = audit["items"] if isinstance(audit, dict) else audit
    changes = [e for e in events if e["action"] == "tenant.contacts_changed"]
    assert len(changes) == 2 and new_slack not in str(changes), "the ledger names fields, not webhook secrets"


def test_a_tier_that_needs_a_webhook_keeps_one(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("needs-hook", tier="premium")
    url = f"/v1/tenants/{t['id']}/contacts"
    refused = client.patch(url, json={"slack_webhook_url": None}, headers=auth(t["admin"]))
    assert refused.status_code == 422, refused.text
    assert refused.json()["violations"][0]["rule"] == "notification_contact_required"
