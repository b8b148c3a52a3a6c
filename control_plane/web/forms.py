"""A console form action: the POST of a signed-in viewer whose CSRF token matches, one
transaction of a service, and the answer. A refused action (a ``DomainError``) rolls the
transaction back and is said inline on the page the form came from, by that page's own
``refused`` renderer; what answers a done action runs after the commit (it may read what the
action wrote, or forget cached keys). A tenant admin's page takes its form through ``admin_form``,
and an action that changes the tenant's set-up first refuses a read-only tenant
(``require_writable_tenant``); revoking a key or removing a person stays possible."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from control_plane.db import unit_of_work
from control_plane.errors import Conflict, DomainError
from control_plane.tenants.orm import Tenant
from control_plane.web.pages import ConsoleDeps, Viewer, checked_viewer, csrf_refused, not_admin_page

Done = TypeVar("Done")
CsrfField = Annotated[str, Form(max_length=200)]  # every console form posts its CSRF token as ``csrf``
READ_ONLY = ("SUSPENDED", "OFFBOARDING", "DELETED")


@dataclass(frozen=True)
class ConsoleForm:
    """A POSTed form that passed the CSRF check, and how its page shows a refusal."""

    request: Request
    deps: ConsoleDeps
    viewer: Viewer
    refused: Callable[[ConsoleForm, DomainError], Response]

    def act(self, action: Callable[[Session], Done], answer: Callable[[Done], Response]) -> Response:
        """Run ``action`` in one transaction, then answer with what it returned (after the
        commit); a refusal is the form's page with the reason inline."""
        try:
            with unit_of_work(self.deps.factory) as session:
                done = action(session)
        except DomainError as exc:
            return self.refused(self, exc)
        return answer(done)


def console_form(
    request: Request,
    c: ConsoleDeps,
    csrf: str,
    refused: Callable[[ConsoleForm, DomainError], Response],
) -> ConsoleForm | Response:
    """The form of a signed-in viewer whose CSRF token matches; otherwise the 403 page to answer."""
    viewer = checked_viewer(request, c, csrf)
    if viewer is None:
        return csrf_refused(request)
    return ConsoleForm(request, c, viewer, refused)


def admin_form(
    request: Request,
    c: ConsoleDeps,
    csrf: str,
    refused: Callable[[ConsoleForm, DomainError], Response],
) -> ConsoleForm | Response:
    """``console_form`` for a tenant admin's page; another signed-in viewer gets the 403 page."""
    form = console_form(request, c, csrf, refused)
    if isinstance(form, ConsoleForm) and not form.viewer.is_admin:
        return not_admin_page(request, form.viewer)
    return form


def require_writable_tenant(session: Session, tenant_id: str) -> None:
    """409 (said on the form's page) when the tenant is read-only: suspended or leaving."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is not None and tenant.status in READ_ONLY:
        raise Conflict(f"the tenant is {tenant.status}: it is read-only", field="status")


def field_problem(exc: DomainError) -> str:
    """A refusal as one inline line naming the field it is about."""
    return f"{exc.field or 'input'}: {exc.detail}"
