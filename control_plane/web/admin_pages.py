"""Tenant-admin pages of the console: users (invite, change role, remove) and API keys (create,
rotate, revoke). A secret (invitation token, key) is rendered once in the answer to the POST that
made it, never stored in a cookie or put in a redirect URL. Each action is one transaction of the
same services the API uses (audited with the signed-in admin as actor)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from control_plane.auth import service as keys
from control_plane.auth.scopes import Scope
from control_plane.db import unit_of_work
from control_plane.errors import DomainError
from control_plane.orm_base import utcnow
from control_plane.users import repository as users_repository
from control_plane.users import service as users
from control_plane.users.settings import IdentitySettings
from control_plane.web.forms import (
    ConsoleForm,
    CsrfField,
    admin_form,
    field_problem,
    require_writable_tenant,
)
from control_plane.web.pages import ConsoleDep, Viewer, admin_viewer, redirect, render

router = APIRouter()
KEY_SCOPES = ("app", "analyst", "sre", "tenant-admin")
ROLES = ("analyst", "sre", "tenant-admin")


def _users_page(request: Request, c: ConsoleDep, viewer: Viewer, status: int = 200, **extra: Any) -> Response:
    with unit_of_work(c.factory) as session:
        listed = users_repository.list_in_tenant(session, viewer.tenant_id)
        rows = [
            {"id": u.id, "name": u.name, "email": u.email, "role": u.role, "status": u.status} for u in listed
        ]
    context = {"viewer": viewer, "section": "users", "users": rows, "roles": ROLES, **extra}
    return render(request, "users.html", context, status)


@router.get("/users")
def users_page(request: Request, c: ConsoleDep) -> Response:
    viewer = admin_viewer(request, c)
    return viewer if isinstance(viewer, Response) else _users_page(request, c, viewer)


def _users_refused(form: ConsoleForm, exc: DomainError) -> Response:
    return _users_page(form.request, form.deps, form.viewer, exc.status, problem=field_problem(exc))


@router.post("/users")
def invite_from_console(
    request: Request,
    c: ConsoleDep,
    csrf: CsrfField = "",
    email: Annotated[str, Form(max_length=320)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    form = admin_form(request, c, csrf, _users_refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer
    if "@" not in email or not name.strip():
        return _users_page(
            request, c, viewer, 422, problem="email and name: give the person's e-mail and name"
        )

    def invite(session: Session) -> dict[str, str]:
        require_writable_tenant(session, viewer.tenant_id)
        invitation = users.invite(
            session,
            viewer.tenant_id,
            email=email,
            name=name,
            role=role,
            actor=viewer.principal.actor,
            settings=request.app.state.provided[IdentitySettings],
            now=utcnow(),
        )
        return {"email": invitation.user.email, "token": invitation.token}

    return form.act(invite, lambda shown: _users_page(request, c, viewer, 201, invited=shown))


@router.post("/users/{user_id}/role")
def role_from_console(
    user_id: str,
    request: Request,
    c: ConsoleDep,
    csrf: CsrfField = "",
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    form = admin_form(request, c, csrf, _users_refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer

    def change_role(session: Session) -> None:
        require_writable_tenant(session, viewer.tenant_id)
        users.change_role(session, viewer.tenant_id, user_id, role, actor=viewer.principal.actor)

    return form.act(change_role, lambda _: redirect("/console/users"))


@router.post("/users/{user_id}/remove")
def remove_from_console(user_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "") -> Response:
    form = admin_form(request, c, csrf, _users_refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer
    return form.act(
        lambda session: users.remove(session, viewer.tenant_id, user_id, actor=viewer.principal.actor),
        lambda _: redirect("/console/users"),
    )


def _keys_page(request: Request, c: ConsoleDep, viewer: Viewer, status: int = 200, **extra: Any) -> Response:
    now = utcnow()
    with unit_of_work(c.factory) as session:
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "scope": k.scope,
                "created_at": k.created_at,
                "live": keys.is_live(k, now),
            }
            for k in keys.list_keys(session, viewer.tenant_id)
        ]
    context = {"viewer": viewer, "section": "keys", "keys": rows, "scopes": KEY_SCOPES, **extra}
    return render(request, "keys.html", context, status)


@router.get("/keys")
def keys_page(request: Request, c: ConsoleDep) -> Response:
    viewer = admin_viewer(request, c)
    return viewer if isinstance(viewer, Response) else _keys_page(request, c, viewer)


def _keys_refused(form: ConsoleForm, exc: DomainError) -> Response:
    return _keys_page(form.request, form.deps, form.viewer, exc.status, problem=field_problem(exc))


@router.post("/keys")
def create_key_from_console(
    request: Request,
    c: ConsoleDep,
    csrf: CsrfField = "",
    name: Annotated[str, Form(max_length=100)] = "",
    scope: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    form = admin_form(request, c, csrf, _keys_refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer
    if scope not in KEY_SCOPES or not name.strip():
        return _keys_page(
            request, c, viewer, 422, problem="name and scope: name the key and choose its scope"
        )

    def create(session: Session) -> dict[str, str]:
        require_writable_tenant(session, viewer.tenant_id)
        issued = keys.issue_key(
            session,
            tenant_id=viewer.tenant_id,
            scope=Scope(scope),
            name=name.strip(),
            actor=viewer.principal.actor,
        )
        return {"name": issued.key.name, "secret": issued.secret}

    return form.act(create, lambda shown: _keys_page(request, c, viewer, 201, issued=shown))


@router.post("/keys/{key_id}/rotate")
def rotate_key_from_console(key_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "") -> Response:
    form = admin_form(request, c, csrf, _keys_refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer

    def rotate(session: Session) -> dict[str, str]:
        require_writable_tenant(session, viewer.tenant_id)
        issued = keys.rotate_key(session, viewer.tenant_id, key_id, actor=viewer.principal.actor)
        return {"name": issued.key.name, "secret": issued.secret}

    def rotated(shown: dict[str, str]) -> Response:
        c.verifier.forget([key_id])
        return _keys_page(request, c, viewer, 201, issued=shown)

    return form.act(rotate, rotated)


@router.post("/keys/{key_id}/revoke")
def revoke_key_from_console(key_id: str, request: Request, c: ConsoleDep, csrf: CsrfField = "") -> Response:
    form = admin_form(request, c, csrf, _keys_refused)
    if isinstance(form, Response):
        return form
    viewer = form.viewer

    def revoked(_: object) -> Response:
        c.verifier.forget([key_id])
        return redirect("/console/keys")

    return form.act(
        lambda session: keys.revoke_key(session, viewer.tenant_id, key_id, actor=viewer.principal.actor),
        revoked,
    )
