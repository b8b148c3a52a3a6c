"""The analyst console: server-rendered pages over the review service (no build step, no CDN).

Sign-in stores the analyst's key in a signed HttpOnly, SameSite=Strict cookie; each request
re-verifies it (so a revoked key signs the console out). Every POST carries the session's CSRF
token. Each action is one transaction, committed before the redirect is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from control_plane.auth.scopes import Principal, Scope
from control_plane.db import unit_of_work
from control_plane.deps import ContainerDep
from control_plane.errors import DomainError
from control_plane.orm_base import utcnow
from control_plane.review import service
from control_plane.review.schemas import DEFAULT_CLAIM_MINUTES, ReviewQuery, VerdictRequest
from control_plane.review.views import detail_out, review_out
from control_plane.tenancy import tenant_of
from control_plane.web.chart import daily_chart
from control_plane.web.session import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE_S,
    ConsoleSession,
    CookieCodec,
    new_csrf,
    same_token,
)
from control_plane.web.settings import ConsoleSettings

HERE = Path(__file__).parent
STATIC_FILES = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
CONSOLE_SCOPES = frozenset({Scope.ANALYST, Scope.TENANT_ADMIN})
CHART_DAYS = 14
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
QUEUE_FIELDS = (
    "decision",
    "status",
    "score_min",
    "score_max",
    "amount_min",
    "amount_max",
    "since",
    "until",
    "card_token",
    "terminal_id",
    "sort",
    "order",
    "limit",
)

templates = Jinja2Templates(directory=str(HERE / "templates"))


@asynccontextmanager
async def check_console_settings(app: FastAPI) -> AsyncIterator[None]:
    """Fail at start-up, not at the first sign-in, when the console's settings are unsafe."""
    container = getattr(app.state, "container", None)
    app.state.console_settings = (
        ConsoleSettings(env=container.settings.env) if container is not None else ConsoleSettings()
    )
    yield


router = APIRouter(prefix="/console", include_in_schema=False, lifespan=check_console_settings)


def _codec(request: Request) -> CookieCodec:
    codec: CookieCodec | None = getattr(request.app.state, "console_codec", None)
    if codec is None:
        settings = getattr(request.app.state, "console_settings", None)
        if settings is None:
            settings = ConsoleSettings(env=request.app.state.container.settings.env)
        codec = CookieCodec(settings)
        request.app.state.console_codec = codec
    return codec


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    csrf: str

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


def _viewer(request: Request, c: ContainerDep) -> Viewer | None:
    session = _codec(request).load_session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    try:
        principal = c.verifier.verify(session.token)
    except DomainError:
        return None
    if principal.tenant_id is None or principal.scope not in CONSOLE_SCOPES:
        return None
    return Viewer(principal=principal, csrf=session.csrf)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _error(request: Request, viewer: Viewer | None, status: int, title: str, detail: str) -> Response:
    context = {"viewer": viewer, "status": status, "title": title, "detail": detail}
    return _page(request, "error.html", context, status_code=status)


def _domain_error(request: Request, viewer: Viewer | None, exc: DomainError) -> Response:
    return _error(request, viewer, exc.status, exc.title, exc.detail)


def _csrf_refused(request: Request) -> Response:
    detail = (
        "The form's security token is missing or does not match this session. Reload the page and try again."
    )
    return _error(request, None, 403, "Forbidden", detail)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def _set_cookie(response: Response, codec: CookieCodec, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="strict", secure=codec.secure
    )


def _checked(request: Request, c: ContainerDep, csrf: str | None) -> Viewer | None:
    """The signed-in viewer of a POST whose CSRF token matches its session; None otherwise."""
    viewer = _viewer(request, c)
    if viewer is None or not same_token(viewer.csrf, csrf):
        return None
    return viewer


# -- sign-in --


@router.get("")
def console_home() -> RedirectResponse:
    return _redirect("/console/queue")


@router.get("/sign-in")
def sign_in_page(request: Request, c: ContainerDep) -> Response:
    if _viewer(request, c) is not None:
        return _redirect("/console/queue")
    codec = _codec(request)
    csrf = new_csrf()
    response = _page(request, "sign_in.html", {"viewer": None, "csrf": csrf, "error": None})
    _set_cookie(response, codec, SIGNIN_COOKIE, codec.dump_signin(csrf), SIGNIN_MAX_AGE_S)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    c: ContainerDep,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    codec = _codec(request)
    expected = codec.load_signin(request.cookies.get(SIGNIN_COOKIE))
    if expected is None or not same_token(expected, csrf):
        return _csrf_refused(request)

    def again(status: int, message: str) -> Response:
        return _page(request, "sign_in.html", {"viewer": None, "csrf": expected, "error": message}, status)

    token = token.strip()
    try:
        principal = c.verifier.verify(token)
    except DomainError:
        return again(401, "That key is not valid, or it has been revoked.")
    if principal.tenant_id is None or principal.scope not in CONSOLE_SCOPES:
        return again(
            403, f"The console takes analyst and tenant-admin keys; this key is {principal.scope.value}."
        )
    response = _redirect("/console/queue")
    session = ConsoleSession(token=token, csrf=new_csrf())
    _set_cookie(response, codec, SESSION_COOKIE, codec.dump_session(session), codec.max_age_s)
    response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/sign-out")
def sign_out(request: Request, c: ContainerDep, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if _checked(request, c, csrf) is None:
        return _csrf_refused(request)
    response = _redirect("/console/sign-in")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


# -- the queue --


@dataclass
class QueueForm:
    values: dict[str, str]
    query: ReviewQuery | None
    errors: list[str]

    def link(self, **extra: str) -> str:
        params = {k: v for k, v in self.values.items() if v}
        return "/console/queue?" + urlencode({**params, **extra})


def _day_start(text: str, field: str, errors: list[str], *, next_day: bool = False) -> str | None:
    try:
        day = date.fromisoformat(text)
        if next_day:
            day += timedelta(days=1)
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        errors.append(f"{field}: use a date such as 2026-11-22")
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _queue_form(raw: Mapping[str, str]) -> QueueForm:
    """The filter form's values → a ReviewQuery; dates are whole UTC days, ``until`` inclusive."""
    values = {k: raw.get(k, "").strip() for k in QUEUE_FIELDS}
    values["status"] = values["status"] or "open"
    errors: list[str] = []
    params: dict[str, Any] = {k: v for k, v in values.items() if v and k not in ("status", "since", "until")}
    if values["status"] != "any":
        params["status"] = values["status"]
    if values["since"]:
        params["since"] = _day_start(values["since"], "since", errors)
    if values["until"]:
        params["until"] = _day_start(values["until"], "until", errors, next_day=True)
    if raw.get("cursor"):
        params["cursor"] = raw["cursor"]
    query = None
    try:
        query = ReviewQuery.model_validate({k: v for k, v in params.items() if v is not None})
    except ValidationError as exc:
        errors += [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return QueueForm(values=values, query=query if not errors else None, errors=errors)


@router.get("/queue")
def queue_page(request: Request, c: ContainerDep) -> Response:
    viewer = _viewer(request, c)
    if viewer is None:
        return _redirect("/console/sign-in")
    form = _queue_form(request.query_params)
    now = utcnow()
    items: list[Any] = []
    next_cursor = None
    notice = None
    with unit_of_work(c.factory) as session:
        if form.query is not None:
            try:
                page = service.list_reviews(session, viewer.tenant_id, form.query, now=now)
                items, next_cursor = [review_out(i, now) for i in page.items], page.next_cursor
            except DomainError as exc:
                form.errors.append(f"{exc.field or 'query'}: {exc.detail}")
        chart = daily_chart(service.daily_activity(session, viewer.tenant_id, days=CHART_DAYS, now=now))
        decided_id = request.query_params.get("decided")
        if decided_id:
            try:
                decided = service.get(session, viewer.tenant_id, decided_id)
                notice = f"Recorded {decided.verdict} for {decided.txn_id}; it has left the open queue."
            except DomainError:
                notice = None
    context = {
        "viewer": viewer,
        "form": form,
        "items": items,
        "next_url": form.link(cursor=next_cursor) if next_cursor else None,
        "first_url": form.link() if request.query_params.get("cursor") else None,
        "chart": chart,
        "notice": notice,
    }
    return _page(request, "queue.html", context, status_code=422 if form.errors else 200)


# -- one item --


@router.get("/reviews/{review_id}")
def review_page(review_id: str, request: Request, c: ContainerDep) -> Response:
    viewer = _viewer(request, c)
    if viewer is None:
        return _redirect("/console/sign-in")
    now = utcnow()
    try:
        with unit_of_work(c.factory) as session:
            item = service.get(session, viewer.tenant_id, review_id)
            history = service.card_history(session, item)
            prev_id, next_id = service.neighbours(session, item, now=now)
            detail = detail_out(item, history, now)
    except DomainError as exc:
        return _domain_error(request, viewer, exc)
    mine = detail.status == "claimed" and detail.claimed_by == viewer.key_id
    context = {
        "viewer": viewer,
        "item": detail,
        "prev_id": prev_id,
        "next_id": next_id,
        "mine": mine,
        "can_claim": viewer.is_analyst and detail.status != "decided" and (detail.status == "open" or mine),
        "can_decide": detail.status != "decided" and (viewer.is_admin or mine),
        "features": sorted(detail.features.items()),
    }
    return _page(request, "detail.html", context)


def _act(
    request: Request, c: ContainerDep, viewer: Viewer, review_id: str, action: str, **kwargs: Any
) -> Response | None:
    """Run one review action in its own transaction; an error page when it is refused."""
    now = utcnow()
    try:
        with unit_of_work(c.factory) as session:
            service.get(session, viewer.tenant_id, review_id)  # 404 first, as in the API
            if action == "claim":
                tenant_of(viewer.principal, {Scope.ANALYST})
                service.claim(
                    session,
                    viewer.tenant_id,
                    review_id,
                    principal=viewer.principal,
                    minutes=DEFAULT_CLAIM_MINUTES,
                    now=now,
                )
            else:
                tenant_of(viewer.principal, CONSOLE_SCOPES)
                service.decide(
                    session, viewer.tenant_id, review_id, principal=viewer.principal, now=now, **kwargs
                )
    except DomainError as exc:
        return _domain_error(request, viewer, exc)
    return None


@router.post("/reviews/{review_id}/claim")
def claim_from_console(
    review_id: str, request: Request, c: ContainerDep, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    viewer = _checked(request, c, csrf)
    if viewer is None:
        return _csrf_refused(request)
    refused = _act(request, c, viewer, review_id, "claim")
    return refused or _redirect(f"/console/reviews/{review_id}")


@router.post("/reviews/{review_id}/verdict")
def verdict_from_console(
    review_id: str,
    request: Request,
    c: ContainerDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
    verdict: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    viewer = _checked(request, c, csrf)
    if viewer is None:
        return _csrf_refused(request)
    try:
        body = VerdictRequest(verdict=verdict, note=note.strip() or None)  # type: ignore[arg-type]
    except ValidationError:
        return _error(request, viewer, 422, "Invalid input", "verdict: choose fraud, legit or escalate")
    refused = _act(request, c, viewer, review_id, "decide", verdict=body.verdict, note=body.note)
    return refused or _redirect("/console/queue?" + urlencode({"decided": review_id}))


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return PlainTextResponse("not found", status_code=404)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(HERE / "static" / name, media_type=media_type, headers=headers)
