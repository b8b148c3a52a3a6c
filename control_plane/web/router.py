"""The analyst console: server-rendered pages over the review service (no build step, no CDN).

Sign-in stores the analyst's key in a signed HttpOnly, SameSite=Strict cookie; each request
re-verifies it (so a revoked key signs the console out). Every POST carries the session's CSRF
token. Each action is one transaction, committed before the redirect is sent.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from control_plane.errors import DomainError
from control_plane.settings import AppSettings
from control_plane.web import (
    admin_pages,
    model_pages,
    review_pages,
    rollout_pages,
    scoring_pages,
    usage_pages,
)
from control_plane.web.pages import (
    CONSOLE_SCOPES,
    COOKIE_PATH,
    HERE,
    ConsoleDep,
    checked_viewer,
    codec_of,
    csrf_refused,
    redirect,
    render,
    set_cookie,
    store_of,
    viewer_of,
)
from control_plane.web.session import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE_S,
    new_csrf,
    same_token,
)
from control_plane.web.settings import ConsoleSettings

STATIC_FILES = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


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
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """A person signs in with e-mail and password; a key-holder may still paste a key."""
    codec = codec_of(request)
    expected = codec.load_signin(request.cookies.get(SIGNIN_COOKIE))
    if expected is None or not same_token(expected, csrf):
        return csrf_refused(request)

    def again(status: int, message: str) -> Response:
        return render(request, "sign_in.html", {"viewer": None, "csrf": expected, "error": message}, status)

    token, by_password = token.strip(), bool(email.strip())
    try:
        principal = c.people.authenticate(email, password) if by_password else c.verifier.verify(token)
    except DomainError as exc:
        if by_password:
            return again(exc.status, "Wrong e-mail or password." if exc.status == 401 else exc.detail)
        return again(401, "That key is not valid, or it has been revoked.")
    if principal.tenant_id is None or principal.scope not in CONSOLE_SCOPES:
        what = "your role" if principal.is_person else "this key"
        return again(
            403,
            f"The console takes analyst and tenant-admin keys and users; {what} is {principal.scope.value}.",
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


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return PlainTextResponse("not found", status_code=404)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(HERE / "static" / name, media_type=media_type, headers=headers)


router.include_router(review_pages.router)  # the queue and the review pages
router.include_router(admin_pages.router)  # tenant admins: users and API keys
router.include_router(model_pages.router)  # a page per model version: drift, performance, backtests
router.include_router(scoring_pages.router)  # tenant admins: thresholds, allow / block lists
router.include_router(rollout_pages.router)  # tenant admins: rollouts, their steps and actions
router.include_router(usage_pages.router)  # tenant admins: budget and usage with a chart
