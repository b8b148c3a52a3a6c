"""What every console page shares: the signed-in viewer, rendering with the security headers,
error pages, redirects and cookies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from control_plane.auth.scopes import Principal, Scope
from control_plane.auth.service import KeyVerifier
from control_plane.deps import SessionFactoryDep, SettingsDep, VerifierDep, provided
from control_plane.errors import DomainError
from control_plane.settings import AppSettings
from control_plane.web.ports import People
from control_plane.web.session import SESSION_COOKIE, CookieCodec, SessionStore, same_token
from control_plane.web.settings import ConsoleSettings

HERE = Path(__file__).parent
CONSOLE_SCOPES = frozenset({Scope.ANALYST, Scope.TENANT_ADMIN})
COOKIE_PATH = "/console"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=str(HERE / "templates"))


def codec_of(request: Request) -> CookieCodec:
    codec: CookieCodec | None = getattr(request.app.state, "console_codec", None)
    if codec is None:
        settings = getattr(request.app.state, "console_settings", None)
        if settings is None:
            settings = ConsoleSettings(env=request.app.state.provided[AppSettings].env)
        codec = CookieCodec(settings)
        request.app.state.console_codec = codec
    return codec


@dataclass(frozen=True)
class ConsoleDeps:
    """What the console's pages use from the process."""

    factory: sessionmaker[Session]
    verifier: KeyVerifier
    settings: AppSettings
    people: People


def console_deps(
    factory: SessionFactoryDep,
    verifier: VerifierDep,
    settings: SettingsDep,
    people: Annotated[People, Depends(provided(People))],
) -> ConsoleDeps:
    return ConsoleDeps(factory, verifier, settings, people)


ConsoleDep = Annotated[ConsoleDeps, Depends(console_deps)]


def store_of(request: Request, c: ConsoleDeps) -> SessionStore:
    store: SessionStore | None = getattr(request.app.state, "console_sessions", None)
    if store is None:
        settings = getattr(request.app.state, "console_settings", None)
        if settings is None:
            settings = ConsoleSettings(env=c.settings.env)
        store = SessionStore(c.factory, settings, people=c.people)
        request.app.state.console_sessions = store
    return store


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    csrf: str
    tenant_name: str = ""

    @property
    def tenant_id(self) -> str:
        assert self.principal.tenant_id is not None
        return self.principal.tenant_id

    @property
    def key_id(self) -> str:
        return self.principal.key_id

    @property
    def is_admin(self) -> bool:
        return self.principal.scope is Scope.TENANT_ADMIN

    @property
    def is_analyst(self) -> bool:
        return self.principal.scope is Scope.ANALYST


def viewer_of(request: Request, c: ConsoleDeps) -> Viewer | None:
    session = store_of(request, c).load(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    principal = session.principal
    if principal.tenant_id is None or principal.scope not in CONSOLE_SCOPES:
        return None
    return Viewer(principal=principal, csrf=session.csrf, tenant_name=session.tenant_name)


ACTOR_FIELDS = ("claimed_by", "decided_by", "escalated_by", "created_by", "approved_by")


def _actor_ids(context: dict[str, Any]) -> set[str]:
    """The actor ids the page's items carry, to name them all with one lookup."""
    found: set[str] = set()
    for value in context.values():
        for thing in value if isinstance(value, list) else [value]:
            for field in ACTOR_FIELDS:
                ident = getattr(thing, field, None)
                if isinstance(ident, str):
                    found.add(ident)
    return found


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render a page; ``who(id)`` in a template names an actor id (a person, or a key by its name)."""
    ids = _actor_ids(context)
    people: People | None = request.app.state.provided.get(People) if ids else None
    names = people.names(ids) if people is not None else {}
    context.setdefault("who", lambda ident: names.get(ident, ident) if ident else ident)
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, viewer: Viewer | None, status: int, title: str, detail: str) -> Response:
    context = {"viewer": viewer, "status": status, "title": title, "detail": detail}
    return render(request, "error.html", context, status_code=status)


def domain_error_page(request: Request, viewer: Viewer | None, exc: DomainError) -> Response:
    return error_page(request, viewer, exc.status, exc.title, exc.detail)


def csrf_refused(request: Request) -> Response:
    detail = (
        "The form's security token is missing or does not match this session. Reload the page and try again."
    )
    return error_page(request, None, 403, "Forbidden", detail)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def set_cookie(response: Response, codec: CookieCodec, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="strict", secure=codec.secure
    )


def checked_viewer(request: Request, c: ConsoleDeps, csrf: str | None) -> Viewer | None:
    """The signed-in viewer of a POST whose CSRF token matches its session; None otherwise."""
    viewer = viewer_of(request, c)
    if viewer is None or not same_token(viewer.csrf, csrf):
        return None
    return viewer


def not_admin_page(request: Request, viewer: Viewer) -> Response:
    return error_page(request, viewer, 403, "Forbidden", "These pages are for tenant admins.")


def admin_viewer(request: Request, c: ConsoleDeps) -> Viewer | Response:
    """The signed-in tenant admin viewing a page (a form's POST goes through ``forms.admin_form``);
    otherwise the sign-in redirect or the 403 page to answer."""
    viewer = viewer_of(request, c)
    if viewer is None:
        return redirect("/console/sign-in")
    return not_admin_page(request, viewer) if not viewer.is_admin else viewer
