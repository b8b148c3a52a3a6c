"""Tenant-admin console pages for rollouts: the list, one rollout's steps and analyses, and the
pause / resume / abort / emergency-rollback actions through the steps the API runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from control_plane.settings import REPO_ROOT
from providers.local.model_host import LocalModelHost
from providers.ports import ProviderError
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.rollouts.conftest import (  # noqa: F401  (fixtures)
    Clock,
    TrafficFn,
    canary_setup,
    clock,
    live_tenant,
    sim_frame,
    traffic,
    trained_artifact,
)
from tests.control_plane.rollouts.test_rollouts import start
from tests.control_plane.users.conftest import PersonFn
from tests.web.a11y import assert_accessible
from tests.web.console_signin import admin_console, csrf_of, sign_in, signed_in_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "console"


def _start(client: TestClient, t: dict[str, Any]) -> str:
    rollout_id: str = start(client, t)["id"]  # the API's canary at 50 % then 100 %
    return rollout_id


def _state(client: TestClient, t: dict[str, Any], rollout_id: str) -> str:
    state: str = client.get(f"/v1/rollouts/{rollout_id}", headers=auth(t["admin"])).json()["state"]
    return state


def test_a_tenant_admin_reads_a_rollout_and_controls_it(
    client: TestClient,
    canary_setup: dict[str, Any],  # noqa: F811
    person: PersonFn,
    worker: Worker,
    container: State,
    clock: Clock,  # noqa: F811
    traffic: TrafficFn,  # noqa: F811
) -> None:
    t = canary_setup
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    rollout_id = _start(client, t)
    worker.drain()
    assert set(traffic(t, 120, "a")) == {200}
    container.scoring.recorder.flush()
    clock.advance(6)
    worker.drain()  # the first step's analysis: the candidate moves to 100 %

    csrf = admin_console(client, "boss@acme.example")
    listed = client.get("/console/rollouts")
    assert listed.status_code == 200 and f'href="/console/rollouts/{rollout_id}"' in listed.text
    page = client.get(f"/console/rollouts/{rollout_id}")
    assert page.status_code == 200
    assert 'data-testid="analysis-0-0"' in page.text and "Successful" in page.text
    assert "score_psi" in page.text and "error_burn_rate" in page.text
    assert "Step 2: candidate at 100.00 % (current)" in page.text
    assert f"<code>{t['candidate']}</code></th><td>10000</td>" in page.text  # wanted
    assert 'for="reason-pause"' in page.text and "Resume</button>" not in page.text

    assert client.post(f"/console/rollouts/{rollout_id}/pause", data={"reason": "x"}).status_code == 403
    too_long = client.post(f"/console/rollouts/{rollout_id}/pause", data={"csrf": csrf, "reason": "x" * 1001})
    assert too_long.status_code == 422 and 'data-testid="problem">reason:' in too_long.text  # the API's limit
    paused = client.post(
        f"/console/rollouts/{rollout_id}/pause",
        data={"csrf": csrf, "reason": "checking a spike"},
        follow_redirects=False,
    )
    assert paused.status_code == 303 and _state(client, t, rollout_id) == "PAUSED"
    assert "Resume</button>" in client.get(f"/console/rollouts/{rollout_id}").text
    resumed = client.post(
        f"/console/rollouts/{rollout_id}/resume", data={"csrf": csrf}, follow_redirects=False
    )
    assert resumed.status_code == 303 and _state(client, t, rollout_id) == "PROGRESSING"

    no_reason = client.post(f"/console/rollouts/{rollout_id}/rollback", data={"csrf": csrf, "reason": " "})
    assert no_reason.status_code == 422 and 'data-testid="problem">reason:' in no_reason.text
    assert _state(client, t, rollout_id) == "PROGRESSING"

    rolled = client.post(
        f"/console/rollouts/{rollout_id}/rollback",
        data={"csrf": csrf, "reason": "fraud losses up"},
        follow_redirects=False,
    )
    assert rolled.status_code == 303 and _state(client, t, rollout_id) == "ROLLED_BACK"
    weights = container.providers.model_host.weights(t["id"])
    assert weights[t["model"]] == 10000 and weights.get(t["candidate"], 0) == 0
    after = client.get(f"/console/rollouts/{rollout_id}").text
    assert "fraud losses up" in after and "Emergency rollback</button>" not in after
    late = client.post(f"/console/rollouts/{rollout_id}/pause", data={"csrf": csrf, "reason": "late"})
    assert late.status_code == 409 and 'data-testid="problem">state:' in late.text
    actions = client.get(f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"])).json()
    by_boss = {e["action"] for e in actions if e.get("actor_name") == "Bo Boss <boss@acme.example>"}
    assert {"rollout.paused", "rollout.progressing", "rollout.rolling_back"} <= by_boss, by_boss


def test_a_weight_change_the_host_refuses_is_said_on_the_page_and_stays_recorded(
    client: TestClient,
    canary_setup: dict[str, Any],  # noqa: F811
    person: PersonFn,
    container: State,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = canary_setup
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    rollout_id = _start(client, t)
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)

    def refuse(tenant_id: str, weights: Mapping[str, int]) -> None:
        raise ProviderError("endpoint fraudrail-x is Updating")

    monkeypatch.setattr(host, "set_weights", refuse)
    csrf = admin_console(client, "boss@acme.example")
    paused = client.post(f"/console/rollouts/{rollout_id}/pause", data={"csrf": csrf, "reason": "spike"})
    assert paused.status_code == 503
    assert 'data-testid="problem">weights: the rollout is PAUSED' in paused.text
    assert "endpoint fraudrail-x is Updating" in paused.text
    assert _state(client, t, rollout_id) == "PAUSED"  # the intent committed; a reconcile retries it
    rolled = client.post(f"/console/rollouts/{rollout_id}/rollback", data={"csrf": csrf, "reason": "ops"})
    assert rolled.status_code == 503 and "the rollout is ROLLING_BACK" in rolled.text
    assert _state(client, t, rollout_id) == "ROLLING_BACK"


def test_analysts_and_other_tenants_are_refused(
    client: TestClient,
    canary_setup: dict[str, Any],  # noqa: F811
    onboard: OnboardFn,
    person: PersonFn,
) -> None:
    t = canary_setup
    rollout_id = _start(client, t)
    other = onboard("beta-co")
    person(other, "bob@beta.example", role="tenant-admin")
    person(t, "al@acme.example", role="analyst")
    csrf = admin_console(client, "bob@beta.example")
    assert rollout_id not in client.get("/console/rollouts").text
    assert client.get(f"/console/rollouts/{rollout_id}").status_code == 404
    for action in ("pause", "resume", "abort", "rollback"):
        resp = client.post(f"/console/rollouts/{rollout_id}/{action}", data={"csrf": csrf, "reason": "x"})
        assert resp.status_code == 404, (action, resp.text)
    assert _state(client, t, rollout_id) == "PROGRESSING"
    client.cookies.clear()
    sign_in(client, "al@acme.example")
    assert client.get("/console/rollouts").status_code == 403
    assert client.get(f"/console/rollouts/{rollout_id}").status_code == 403
    analyst_csrf = csrf_of(client.get("/console/queue").text)
    resp = client.post(f"/console/rollouts/{rollout_id}/abort", data={"csrf": analyst_csrf})
    assert resp.status_code == 403 and _state(client, t, rollout_id) == "PROGRESSING"


@pytest.mark.browser
def test_an_admin_pauses_a_rollout_in_the_browser(
    browser: Browser,
    live_server: str,
    client: TestClient,
    canary_setup: dict[str, Any],  # noqa: F811
    person: PersonFn,
) -> None:
    from playwright.sync_api import expect

    t = canary_setup
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    rollout_id = _start(client, t)
    context, page = signed_in_page(browser, live_server, "boss@acme.example")
    page.get_by_role("link", name="Rollouts").click()
    assert_accessible(page)
    page.get_by_role("link", name=rollout_id).click()
    page.get_by_label("Reason").first.fill("checking a spike")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_test_id("state")).to_contain_text("PAUSED")
    assert_accessible(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rollout.png"), full_page=True)
    context.close()
