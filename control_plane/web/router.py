"""The analyst console: server-rendered pages over the review service (no build step, no CDN).

Sign-in stores the analyst's key in a signed HttpOnly, SameSite=Strict cookie; each request
re-verifies it (so a revoked key signs the console out). Every POST carries the session's CSRF
token. Each action is one transaction, committed before the redirect is sent.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError

from control_plane.auth.scopes import Scope
from control_plane.db import unit_of_work
from control_plane.errors import DomainError
from control_plane.orm_base import utcnow
from control_plane.review import service
from control_plane.review.schemas import DEFAULT_CLAIM_MINUTES, VerdictRequest
from control_plane.review.views import detail_out, review_out
from control_plane.settings import AppSettings
from control_plane.tenancy import tenant_of
from control_plane.web.chart import daily_chart
from control_plane.web.pages import (
    CONSOLE_SCOPES,
    COOKIE_PATH,
    HERE,
    ConsoleDep,
    Viewer,
    checked_viewer,
    codec_of,
    csrf_refused,
    domain_error_page,
    error_page,
    redirect,
    render,
    set_cookie,
    store_of,
    viewer_of,
)
from control_plane.web.queue_form import queue_form
from control_plane.web.session import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE_S,
    new_csrf,
    same_token,
)
from control_plane.web.settings import ConsoleSettings

STATIC_FILES = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
CHART_DAYS = 14


@asynccontextmanager
async def check_console_settings(app: FastAPI) -> AsyncIterator[None]:
    """Fail at start-up, not at the first sign-in, when the console's settings are unsafe."""
    provided = getattr(app.state, "provided", None)
    app.state.console_settings = (
        ConsoleSettings(env=provided[AppSettings].env) if provided is not None else ConsoleSettings()
    )
    yield


router = APIRouter(prefix="/console", include_in_schema=False, lifespan=check_console_settings)


@router.get("")
def console_home() -> RedirectResponse:
    return redirect("/console/queue")


@router.get("/sign-in")
def sign_in_page(request: Request, c: ConsoleDep) -> Response:
    if viewer_of(request, c) is not None:
        return redirect("/console/queue")
    codec = codec_of(request)
    csrf = new_csrf()
    response = render(request, "sign_in.html", {"viewer": None, "csrf": csrf, "error": None})
    set_cookie(response, codec, SIGNIN_COOKIE, codec.dump_signin(csrf), SIGNIN_MAX_AGE_S)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    c: ConsoleDep,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    codec = codec_of(request)
    expected = codec.load_signin(request.cookies.get(SIGNIN_COOKIE))
    if expected is None or not same_token(expected, csrf):
        return csrf_refused(request)

    def again(status: int, message: str) -> Response:
        return render(request, "sign_in.html", {"viewer": None, "csrf": expected, "error": message}, status)

    token = token.strip()
    try:
        principal = c.verifier.verify(token)
    except DomainError:
        return again(401, "That key is not valid, or it has been revoked.")
    if principal.tenant_id is None or principal.scope not in CONSOLE_SCOPES:
        return again(
            403, f"The console takes analyst and tenant-admin keys; this key is {principal.scope.value}."
        )
    response = redirect("/console/queue")
    session_id, _ = store_of(request, c).create(principal)  # the key itself stays out of the cookie
    set_cookie(response, codec, SESSION_COOKIE, session_id, codec.max_age_s)
    response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/sign-out")
def sign_out(request: Request, c: ConsoleDep, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if checked_viewer(request, c, csrf) is None:
        return csrf_refused(request)
    store_of(request, c).end(request.cookies.get(SESSION_COOKIE))
    response = redirect("/console/sign-in")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


# -- the queue --


@router.get("/queue")
def queue_page(request: Request, c: ConsoleDep) -> Response:
    viewer = viewer_of(request, c)
    if viewer is None:
        return redirect("/console/sign-in")
    form = queue_form(request.query_params)
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
    return render(request, "queue.html", context, status_code=422 if form.errors else 200)


# -- one item --


@router.get("/reviews/{review_id}")
def review_page(review_id: str, request: Request, c: ConsoleDep) -> Response:
    viewer = viewer_of(request, c)
    if viewer is None:
        return redirect("/console/sign-in")
    now = utcnow()
    try:
        with unit_of_work(c.factory) as session:
            item = service.get(session, viewer.tenant_id, review_id)
            history = service.card_history(session, item)
            prev_id, next_id = service.neighbours(session, item, now=now)
            detail = detail_out(item, history, now)
    except DomainError as exc:
        return domain_error_page(request, viewer, exc)
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
    return render(request, "detail.html", context)


def _act(
    request: Request, c: ConsoleDep, viewer: Viewer, review_id: str, action: str, **kwargs: Any
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
        return domain_error_page(request, viewer, exc)
    return None


@router.post("/reviews/{review_id}/claim")
def claim_from_console(
    review_id: str, request: Request, c: ConsoleDep, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    viewer = checked_viewer(request, c, csrf)
    if viewer is None:
        return csrf_refused(request)
    refused = _act(request, c, viewer, review_id, "claim")
    return refused or redirect(f"/console/reviews/{review_id}")


@router.post("/reviews/{review_id}/verdict")
def verdict_from_console(
    review_id: str,
    request: Request,
    c: ConsoleDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
    verdict: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    viewer = checked_viewer(request, c, csrf)
    if viewer is None:
        return csrf_refused(request)
    try:
        body = VerdictRequest(verdict=verdict, note=note.strip() or None)  # type: ignore[arg-type]
    except ValidationError:
        return error_page(request, viewer, 422, "Invalid input", "verdict: choose fraud, legit or escalate")
    refused = _act(request, c, viewer, review_id, "decide", verdict=body.verdict, note=body.note)
    return refused or redirect("/console/queue?" + urlencode({"decided": review_id}))


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return PlainTextResponse("not found", status_code=404)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(HERE / "static" / name, media_type=media_type, headers=headers)
