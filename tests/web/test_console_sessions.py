"""Console sessions live server-side: an opaque cookie, idle and absolute timeouts, revocable."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.orm_base import utcnow
from control_plane.web.session import SESSION_COOKIE, ConsoleSessionRow
from tests.control_plane.conftest import OnboardFn, auth
from tests.web.test_console_http import _csrf, _sign_in


def _signed_in(client: TestClient, token: str) -> str:
    resp = _sign_in(client, token)
    assert resp.status_code == 303, resp.text
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie


def _on_queue(client: TestClient) -> bool:
    resp = client.get("/console/queue", follow_redirects=False)
    return resp.status_code == 200 and "Review queue" in resp.text


def _rows(container: State) -> list[ConsoleSessionRow]:
    with container.factory() as db:
        return list(db.scalars(select(ConsoleSessionRow)))


def _age(container: State, **shift: timedelta) -> None:
    with unit_of_work(container.factory) as db:
        for row in db.scalars(select(ConsoleSessionRow)):
            for column, by in shift.items():
                setattr(row, column, getattr(row, column) - by)


def test_the_cookie_is_an_opaque_id_and_the_key_never_leaves_the_form(
    client: TestClient, onboard: OnboardFn, container: State
) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    cookie = _signed_in(client, t["analyst"])
    key_hex, secret = t["analyst"].removeprefix("frk_").split(".", 1)
    assert key_hex not in cookie and secret not in cookie and len(cookie) >= 40
    (row,) = _rows(container)
    assert row.id_hash != cookie and len(row.id_hash) == 64, "only a hash of the id is stored"
    assert row.key_id == f"key_{key_hex}" and row.scope == "analyst" and row.ended_at is None
    assert _on_queue(client)


def test_sign_out_ends_the_session_server_side(
    client: TestClient, onboard: OnboardFn, container: State
) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    cookie = _signed_in(client, t["analyst"])
    queue = client.get("/console/queue")
    assert (
        client.post("/console/sign-out", data={"csrf": _csrf(queue.text)}, follow_redirects=False).status_code
        == 303
    )
    client.cookies.set(SESSION_COOKIE, cookie, path="/console")  # a copy of the cookie kept somewhere
    assert not _on_queue(client)
    assert _rows(container)[0].ended_at is not None


def test_revoking_the_key_ends_its_sessions(client: TestClient, onboard: OnboardFn, container: State) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    _signed_in(client, t["analyst"])
    assert _on_queue(client)
    key_id = "key_" + t["analyst"].removeprefix("frk_").split(".", 1)[0]
    assert client.delete(f"/v1/tenants/{t['id']}/keys/{key_id}", headers=auth(t["admin"])).status_code == 200
    assert not _on_queue(client)
    assert _rows(container)[0].ended_at is not None


def test_idle_and_absolute_timeouts(client: TestClient, onboard: OnboardFn, container: State) -> None:
    t: dict[str, Any] = onboard("acme-pay", scopes=("analyst",))
    _signed_in(client, t["analyst"])
    _age(container, last_seen_at=timedelta(minutes=29), created_at=timedelta(minutes=29))
    assert _on_queue(client), "29 minutes idle: still signed in (and the visit counts as activity)"
    (row,) = _rows(container)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)
    _age(container, last_seen_at=timedelta(minutes=31))
    assert not _on_queue(client), "30 minutes idle ends it"

    _signed_in(client, t["analyst"])
    _age(container, created_at=timedelta(hours=8))
    assert not _on_queue(client), "8 hours after sign-in it ends, however active"
