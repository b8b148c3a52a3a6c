"""Single sign-on into the console: the tenant's OpenID Connect provider, then a console session.

``/console/sso?tenant=<slug>`` sends the browser to the provider; the provider sends it back to
``/console/sso/callback``. The flow is bound to the browser that started it: a cookie holds the
SHA-256 of its state (SameSite=Lax, as the callback is a navigation from the provider's site), so
an attacker cannot finish their own sign-in in a victim's browser (login CSRF). Both steps answer
a small page that moves on by itself (``Refresh``) instead of a redirect: the sign-in form's CSP
(``form-action 'self'``) would block a redirect to the provider, and the console's session cookie
is SameSite=Strict, which a browser does not send on a redirect chain the provider's site started.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from control_plane.errors import DomainError
from control_plane.web.pages import (
    CONSOLE_SCOPES,
    COOKIE_PATH,
    ConsoleDep,
    codec_of,
    render,
    set_cookie,
    store_of,
)
from control_plane.web.ports import SingleSignOn
from control_plane.web.session import SESSION_COOKIE, SIGNIN_COOKIE, SIGNIN_MAX_AGE_S, new_csrf

router = APIRouter(prefix="/console/sso", include_in_schema=False)


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


CALLBACK_PATH = "/console/sso/callback"
FLOW_COOKIE = "fraudrail_sso_flow"
FLOW_COOKIE_PATH = "/console/sso"
FLOW_COOKIE_MAX_AGE_S = 3600


def _sign_in_again(request: Request, status: int, message: str) -> Response:
    """The sign-in page with the problem said inline (and a fresh sign-in CSRF token)."""
    codec = codec_of(request)
    csrf = new_csrf()
    response = render(request, "sign_in.html", {"viewer": None, "csrf": csrf, "error": message}, status)
    set_cookie(response, codec, SIGNIN_COOKIE, codec.dump_signin(csrf), SIGNIN_MAX_AGE_S)
    return response


def _moving_on(request: Request, location: str, heading: str, link_text: str) -> Response:
    """A page that navigates to ``location`` at once (Refresh), with a link for when it does not."""
    context = {"viewer": None, "next": location, "heading": heading, "link_text": link_text}
    response = render(request, "sso_continue.html", context)
    response.headers["Refresh"] = f"0; url={location}"
    return response


@router.get("")
def console_sso_start(request: Request, tenant: Annotated[str, Query(max_length=64)] = "") -> Response:
    sso: SingleSignOn = request.app.state.provided[SingleSignOn]
    if not tenant.strip():
        return _sign_in_again(request, 422, "Type your organisation's short name to use single sign-on.")
    base = str(request.base_url).rstrip("/")
    try:
        location, state = sso.begin(tenant.strip(), base + CALLBACK_PATH)
    except DomainError as exc:
        if exc.status == 404:
            return _sign_in_again(
                request, 404, f"No organisation {tenant.strip()!r} uses single sign-on here."
            )
        return _sign_in_again(request, exc.status, exc.detail)
    # Not a redirect: the sign-in page's CSP (form-action 'self') also covers where a submitted
    # form redirects to, and the provider is another origin. The page moves on by itself.
    response = _moving_on(request, location, "To your organisation's sign-in", "Continue to sign in")
    response.set_cookie(
        FLOW_COOKIE,
        _digest(state),
        max_age=FLOW_COOKIE_MAX_AGE_S,
        path=FLOW_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=codec_of(request).secure,
    )
    return response


@router.get("/callback")
def console_sso_callback(
    request: Request,
    c: ConsoleDep,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    sso: SingleSignOn = request.app.state.provided[SingleSignOn]
    bound = request.cookies.get(FLOW_COOKIE)
    if not state or bound is None or not hmac.compare_digest(bound.encode(), _digest(state).encode()):
        return _sign_in_again(request, 400, "This sign-in was not started in this browser; start it again.")
    try:
        principal = sso.authenticate(state, code, error, callback_path=CALLBACK_PATH)
    except DomainError as exc:
        return _sign_in_again(request, exc.status, f"Single sign-on refused: {exc.detail}")
    if principal.tenant_id is None or principal.scope not in CONSOLE_SCOPES:
        return _sign_in_again(
            request,
            403,
            f"The console is for analysts and tenant admins; your role is {principal.scope.value}.",
        )
    session_id, _ = store_of(request, c).create(principal)
    response = _moving_on(request, "/console/queue", "Signed in", "Continue to the review queue")
    set_cookie(response, codec_of(request), SESSION_COOKIE, session_id, codec_of(request).max_age_s)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
    return response
