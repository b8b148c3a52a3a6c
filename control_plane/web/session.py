"""Signed console cookies: the session (the analyst's key and a CSRF token) and the sign-in form's token.

The cookies are HttpOnly and SameSite=Strict; every POST must also carry the CSRF token from the
page's form, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from control_plane.web.settings import ConsoleSettings

SESSION_COOKIE = "fraudrail_console"
SIGNIN_COOKIE = "fraudrail_console_signin"
SIGNIN_MAX_AGE_S = 3600


@dataclass(frozen=True)
class ConsoleSession:
    token: str
    csrf: str


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class CookieCodec:
    def __init__(self, settings: ConsoleSettings) -> None:
        secret = settings.secret.get_secret_value()
        self.max_age_s = settings.session_max_age_s
        self.secure = settings.secure_cookies
        self._session = URLSafeTimedSerializer(secret, salt="fraudrail.console.session")
        self._signin = URLSafeTimedSerializer(secret, salt="fraudrail.console.signin")

    def dump_session(self, session: ConsoleSession) -> str:
        return self._session.dumps({"t": session.token, "c": session.csrf})

    def load_session(self, raw: str | None) -> ConsoleSession | None:
        if not raw:
            return None
        try:
            data = self._session.loads(raw, max_age=self.max_age_s)
        except BadSignature:  # also SignatureExpired
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("t"), str)
            or not isinstance(data.get("c"), str)
        ):
            return None
        return ConsoleSession(token=data["t"], csrf=data["c"])

    def dump_signin(self, csrf: str) -> str:
        return self._signin.dumps(csrf)

    def load_signin(self, raw: str | None) -> str | None:
        if not raw:
            return None
        try:
            value = self._signin.loads(raw, max_age=SIGNIN_MAX_AGE_S)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None
