"""The console's page per model version: drift over days, a feature's reference vs current
histogram, performance with label maturity, the retraining's comparison and a threshold backtest;
for tenant admins and analysts of the version's tenant only; accessible in Chromium."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.training.orm import Retraining
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.monitoring.conftest import monitored, reference, score  # noqa: F401  (fixtures)
from tests.control_plane.scoring.conftest import sim_frame, sim_requests, trained_artifact  # noqa: F401
from tests.web.a11y import assert_accessible
from tests.web.console_signin import key_signed_in_page
from tests.web.test_console_models import _sign_in

COMPARISON = {
    "window_start": "2018-05-10T00:00:00+00:00",
    "window_end": "2018-05-12T23:00:00+00:00",
    "transactions": 900,
    "fraud": 31,
    "thresholds": {"review": 0.5, "suspicious": 0.8},
    "champion": {"average_precision": 0.41, "recall": 0.5},
    "challenger": {"average_precision": 0.63, "recall": 0.61},
    "flips": [
        {"from_decision": "LEGIT", "to_decision": "REVIEW", "count": 17, "examples": ["t1"]},
        {"from_decision": "SUSPICIOUS", "to_decision": "LEGIT", "count": 4, "examples": ["t2"]},
    ],
    "days": [
        {"day": "2018-05-10", "transactions": 300, "fraud": 10, "champion": {"flagged": 9, "review": 5},
         "challenger": {"flagged": 12, "review": 8}},
        {"day": "2018-05-11", "transactions": 600, "fraud": 21, "champion": {"flagged": 19, "review": 6},
         "challenger": {"flagged": 25, "review": 11}},
    ],
}  # fmt: skip


@pytest.fixture
def watched(
    client: TestClient,
    container: State,
    monitored: dict[str, Any],  # noqa: F811
    sim_frame: pd.DataFrame,  # noqa: F811
) -> dict[str, Any]:
    """The monitored tenant's version scored 3 days of traffic, some frauds labelled, and a
    retraining compared it with a challenger."""
    t = monitored
    last = sim_frame["ts"].max()
    recent = sim_frame[sim_frame["ts"] > last - pd.Timedelta(days=3)].iloc[::12]
    score(client, t, sim_requests(recent, len(recent)))
    container.monitor.flush()
    frauds = recent[recent["is_fraud"] == 1]
    items = [
        {"txn_id": r.txn_id, "label": "chargeback", "known_at": (r.ts + pd.Timedelta(days=1)).isoformat()}
        for r in frauds.itertuples()
    ]
    assert items, "the sample holds frauds"
    t["labelled"] = len(items)
    resp = client.post("/v1/labels", json={"items": items}, headers=auth(t["admin"]))
    assert resp.status_code == 200 and resp.json()["unknown_txn_ids"] == [], resp.text
    with unit_of_work(container.factory) as s:
        s.add(
            Retraining(
                id="rt_page0001", tenant_id=t["id"], trigger="drift", trigger_evidence={}, status="canary",
                champion_version=t["model"], challenger_version="mv_challenger0001",
                cutoff=last.to_pydatetime() - timedelta(days=1), requested_by="system:monitoring",
                comparison=COMPARISON,
            )
        )  # fmt: skip
    t["days"] = sorted({d.date().isoformat() for d in recent["ts"]})
    t["scored"] = len(recent)
    return t


def test_the_page_shows_drift_performance_and_backtests_to_admins_and_analysts(
    client: TestClient, watched: dict[str, Any]
) -> None:
    t = watched
    url = f"/console/models/{t['model']}"
    assert client.get(url, follow_redirects=False).status_code == 303  # signed out
    _sign_in(client, t["analyst"])
    page = client.get(url)
    assert page.status_code == 200, page.text
    html = page.text
    # Drift over time: one line for the score and one per worst feature, a point per day with traffic.
    drift = html.split('data-testid="drift-chart"')[1].split("</svg>")[0]
    assert drift.count('data-series="') == 6 and 'data-series="score"' in drift
    assert drift.count('<circle class="dot s0"') == 3  # the score's PSI on each of the 3 days
    assert 'data-testid="drift-chart"' in html and 'data-testid="histogram"' in html
    assert re.search(r"Latest day \([^)]*, \d+ checks\)", html)
    # Performance per day of traffic, with label maturity.
    for day in t["days"]:
        assert f"<td>{day}</td>" in html, day
    assert "Label maturity (days)" in html and "(young)" in html
    # The retraining's comparison: flip matrix and workload per day.
    assert "rt_page0001" in html and "0.41 → 0.63" in html
    matrix = html.split('data-testid="comparison-flips"')[1].split("</table>")[0]
    assert re.search(r'<th scope="row">LEGIT</th><td class="num">·</td><td class="num">17</td>', matrix)
    assert re.search(r'<th scope="row">SUSPICIOUS</th><td class="num">4</td>', matrix)
    assert html.count("<title>05-1") >= 4  # two days x champion and challenger bars

    # A chosen feature's histogram: the reference's bins with both shares.
    page = client.get(url, params={"feature": "amount"})
    assert "amount: share of checks per reference bin" in page.text
    assert '<option value="amount" selected>' in page.text

    # A threshold backtest on demand; bad input is named, not a 500.
    tested = client.get(url, params={"review": "0.2", "days": "30"})
    assert tested.status_code == 200
    summary = tested.text.split('data-testid="backtest-summary">')[1].split("</p>")[0]
    assert summary.startswith(f"{t['scored']} transactions ({t['labelled']} labelled)")
    assert 'data-testid="backtest-flips"' in tested.text and 'data-testid="backtest-workload"' in tested.text
    bad = client.get(url, params={"review": "2"})
    assert bad.status_code == 200 and 'data-testid="backtest-error"' in bad.text
    assert "Thresholds are numbers from 0 to 1" in bad.text

    _sign_in(client, t["admin"])
    assert client.get(url).status_code == 200
    # The nav's Monitoring link goes to the PRODUCTION version.
    live = client.get("/console/models/production", follow_redirects=False)
    assert live.status_code == 303 and live.headers["location"] == url


def test_another_tenants_version_is_not_found(
    client: TestClient, onboard: OnboardFn, watched: dict[str, Any]
) -> None:
    other = onboard("other-co", scopes=("analyst",))
    for key in (other["analyst"], other["admin"]):
        _sign_in(client, key)
        page = client.get(f"/console/models/{watched['model']}")
        assert page.status_code == 404
        assert "Drift against the training reference" not in page.text
        assert client.get(f"/console/models/{watched['model']}", params={"review": "0.1"}).status_code == 404
    none_live = client.get("/console/models/production")
    assert none_live.status_code == 404 and "no PRODUCTION model" in none_live.text


@pytest.mark.browser
def test_the_model_page_is_accessible(browser: Browser, live_server: str, watched: dict[str, Any]) -> None:
    context, page = key_signed_in_page(browser, live_server, watched["analyst"])
    page.get_by_role("link", name="Monitoring").click()
    expect(page).to_have_url(re.compile(rf"/console/models/{watched['model']}$"))
    expect(page.get_by_test_id("drift-chart")).to_be_visible()
    page.select_option("#feature", "amount")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("figcaption", has_text="amount: share of checks")).to_be_visible()
    page.fill("#review", "0.2")
    page.get_by_role("button", name="Backtest").click()
    expect(page.get_by_test_id("backtest-summary")).to_contain_text(f"{watched['scored']} transactions")
    assert page.locator("[data-testid=backtest-workload] rect.bar").count() >= 2
    assert_accessible(page)
    from control_plane.settings import REPO_ROOT

    artifacts = REPO_ROOT / "var" / "test-artifacts" / "console"
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "model.png"), full_page=True)
    context.close()
