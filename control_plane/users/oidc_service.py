"""OpenID Connect sign-in: a tenant's provider configuration, and the authorization-code flow with
PKCE (S256), ``state`` and ``nonce`` that ends in the same server-side session as a password.

``OidcSignIn`` runs each step in short transactions of its own (like ``UserSessions``): the flow
row is deleted in its own transaction before anything else is checked, so a state cannot be used
twice even when the rest of the callback fails, and a refused sign-in is audited although the
request answers an error.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.errors import (
    DomainError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)
from control_plane.ids import new_id
from control_plane.orm_base import aware, utcnow
from control_plane.principals import Principal
from control_plane.users import repository
from control_plane.users.oidc_orm import OidcFlow, TenantOidcConfig
from control_plane.users.oidc_settings import API_CALLBACK_PATH, OidcSettings
from control_plane.users.oidc_tokens import ProviderDirectory, SecretBox, pkce_pair, verify_id_token
from control_plane.users.orm import User
from control_plane.users.ports import OidcHttp, TenantFinder
from control_plane.users.repository import ACTIVE, INVITED
from control_plane.users.service import principal_of, token_hash
from control_plane.users.sessions import IssuedSession, UserSessions
from providers.ports import ProviderError

SCOPES = "openid email profile"


class BadCallback(DomainError):
    status = 400
    title = "Bad sign-in callback"


@dataclass(frozen=True)
class ProviderConfig:
    """A tenant's configuration read out of its transaction (the secret still sealed)."""

    tenant_id: str
    issuer: str
    client_id: str
    client_secret_sealed: str
    allowed_email_domain: str | None
    jit_role: str | None


def _detached(config: TenantOidcConfig) -> ProviderConfig:
    return ProviderConfig(
        config.tenant_id,
        config.issuer,
        config.client_id,
        config.client_secret_sealed,
        config.allowed_email_domain,
        config.jit_role,
    )


class OidcSignIn:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: OidcSettings,
        http: OidcHttp,
        sessions: UserSessions,
        tenants: TenantFinder,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._factory = factory
        self.settings = settings
        self.box = SecretBox(settings.secret_key.get_secret_value())
        self.directory = ProviderDirectory(http, settings.metadata_ttl_s, settings.metadata_cache_entries)
        self.http = http
        self.sessions = sessions
        self.tenants = tenants
        self.clock = clock  # settable: tests move a flow past its expiry without sleeping

    def start(self, tenant: str, redirect_uri: str) -> str:
        """Begin a sign-in for the tenant (by slug or id): the provider URL to send the browser to."""
        return self.begin(tenant, redirect_uri)[0]

    def begin(self, tenant: str, redirect_uri: str) -> tuple[str, str]:
        """The provider URL to send the browser to, and the flow's ``state`` (the console binds the
        flow to the browser that started it with a cookie holding its digest)."""
        now = self.clock()
        with unit_of_work(self._factory) as db:
            found = self.tenants(db, tenant)
            config = db.get(TenantOidcConfig, found[0]) if found is not None else None
            if found is None or config is None:
                raise NotFound(f"no tenant {tenant!r} with single sign-on", field="tenant")
            if found[1] in ("SUSPENDED", "OFFBOARDING", "DELETED"):
                raise Forbidden(f"the tenant is {found[1]}: no sign-in", field="tenant")
            provider = _detached(config)
            db.execute(delete(OidcFlow).where(OidcFlow.expires_at <= now))
            open_flows = db.scalar(
                select(func.count()).select_from(OidcFlow).where(OidcFlow.tenant_id == provider.tenant_id)
            )
            if int(open_flows or 0) >= self.settings.max_open_flows_per_tenant:
                raise TooManyRequests(
                    "too many sign-ins are waiting for the identity provider; retry in a minute",
                    field="tenant",
                    extra={"retry_after_s": 60},
                )
        metadata = self.directory.discover(provider.issuer)  # outside the transaction: network
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        with unit_of_work(self._factory) as db:
            db.add(
                OidcFlow(
                    state_hash=token_hash(state),
                    tenant_id=provider.tenant_id,
                    nonce=nonce,
                    code_verifier=verifier,
                    redirect_uri=redirect_uri,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.settings.flow_ttl_s),
                )
            )
        query = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return metadata.authorization_endpoint + separator + urlencode(query), state

    def _take_flow(self, state: str) -> tuple[OidcFlow, ProviderConfig]:
        """Delete the flow ``state`` names (committed at once: a state works once) and return it."""
        now = self.clock()
        with unit_of_work(self._factory) as db:
            flow = db.get(OidcFlow, token_hash(state), with_for_update=True)
            if flow is None:
                raise BadCallback(
                    "unknown or already used sign-in state: start the sign-in again", field="state"
                )
            db.delete(flow)
            config = db.get(TenantOidcConfig, flow.tenant_id)
            expired = aware(flow.expires_at) <= now
            provider = _detached(config) if config is not None else None
        if expired:
            raise BadCallback("this sign-in took too long and has expired: start it again", field="state")
        if provider is None:
            raise BadCallback("the tenant's single sign-on was removed meanwhile", field="state")
        return flow, provider

    def finish(self, state: str, code: str | None, error: str | None) -> IssuedSession:
        """The provider sent the browser back to the API: check everything, then open a session."""
        principal = self.authenticate(state, code, error, callback_path=API_CALLBACK_PATH)
        return self.sessions.open(principal, method="oidc")

    def authenticate(
        self, state: str, code: str | None, error: str | None, *, callback_path: str
    ) -> Principal:
        """The person a provider's answer names, every check done (the console opens its own
        session with it). ``callback_path`` is where the answer arrived: a flow started for
        another callback (the API's or the console's) is refused."""
        flow, provider = self._take_flow(state)
        try:
            if not flow.redirect_uri.endswith(callback_path):
                raise BadCallback("this sign-in was started for another page; start it again", field="state")
            if error is not None:
                raise BadCallback(f"the identity provider refused the sign-in: {error}", field="error")
            if not code:
                raise BadCallback("the provider's answer has no code", field="code")
            claims = self._redeem(flow, provider, code)
            return self._person(provider, claims)
        except DomainError as refused:
            self._audit_refusal(provider.tenant_id, refused)
            raise

    def _redeem(self, flow: OidcFlow, provider: ProviderConfig, code: str) -> dict[str, Any]:
        metadata = self.directory.discover(provider.issuer)
        secret = self.box.open(provider.client_secret_sealed)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.code_verifier,
        }
        if metadata.basic_auth:
            basic: tuple[str, str] | None = (provider.client_id, secret)
        else:
            basic = None
            form |= {"client_id": provider.client_id, "client_secret": secret}
        try:
            status, answer = self.http.post_form(metadata.token_endpoint, form, basic)
        except ProviderError as exc:
            raise ServiceUnavailable(
                f"the identity provider's token endpoint is unavailable: {exc}", extra={"retry_after_s": 30}
            ) from exc
        if status != 200 or not isinstance(answer, dict):
            reason = answer.get("error", status) if isinstance(answer, dict) else status
            raise BadCallback(f"the identity provider refused the code ({reason})", field="code")
        return verify_id_token(
            answer.get("id_token"),  # type: ignore[arg-type]  # checked inside
            directory=self.directory,
            metadata=metadata,
            client_id=provider.client_id,
            nonce=flow.nonce,
            now=time.time(),
            skew_s=self.settings.clock_skew_s,
        )

    def _person(self, provider: ProviderConfig, claims: dict[str, Any]) -> Principal:
        """The tenant's user these claims name (by subject, then by verified e-mail), linked or
        provisioned just in time; refused when the person belongs to no user of this tenant."""
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email or len(email) > 320:
            raise Forbidden("the provider did not share an e-mail address", field="id_token.email")
        email = email.strip().lower()
        if claims.get("email_verified") not in (True, "true"):
            raise Forbidden(f"the provider has not verified {email}", field="id_token.email_verified")
        domain = provider.allowed_email_domain
        if domain and email.rsplit("@", 1)[1] != domain:
            raise Forbidden(f"only {domain} addresses may sign in to this tenant", field="id_token.email")
        subject = str(claims["sub"])
        with unit_of_work(self._factory) as db:
            user = db.scalar(
                select(User).where(User.tenant_id == provider.tenant_id, User.oidc_subject == subject)
            ) or repository.by_email(db, email)
            if user is not None and user.tenant_id != provider.tenant_id:
                raise Forbidden(f"{email} is a user of another tenant", field="id_token.email")
            if user is not None and user.oidc_subject not in (None, subject):
                raise Forbidden(f"{email} is linked to another identity", field="id_token.sub")
            if user is None:
                user = self._provision(db, provider, claims, email, subject)
            elif user.oidc_subject is None or user.status == INVITED:
                self._link(db, user, subject, provider.issuer)
            if user.status != ACTIVE:
                raise Forbidden(f"{email} cannot sign in", field="id_token.email")
            return principal_of(user)

    def _provision(
        self, db: Session, provider: ProviderConfig, claims: dict[str, Any], email: str, subject: str
    ) -> User:
        if provider.jit_role is None:
            raise Forbidden(
                f"{email} has not been invited to this tenant; ask a tenant admin", field="id_token.email"
            )
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        user = User(
            id=new_id("usr"),
            tenant_id=provider.tenant_id,
            email=email,
            name=(name or email.split("@")[0]).strip()[:200] or email,
            role=provider.jit_role,
            status=ACTIVE,
            oidc_subject=subject,
        )
        db.add(user)
        db.flush()
        audit.record(
            db,
            tenant_id=provider.tenant_id,
            actor=principal_of(user).actor,
            action="user.provisioned",
            subject=user.id,
            reason=f"first single sign-on through {provider.issuer}",
            after={"email": email, "name": user.name, "role": user.role},
        )
        return user

    def _link(self, db: Session, user: User, subject: str, issuer: str) -> None:
        """An invited (or password) user signs in by single sign-on: it is that identity from now on."""
        accepted = user.status == INVITED
        user.oidc_subject = subject
        user.status = ACTIVE
        user.invitation_hash = None
        user.invitation_expires_at = None
        audit.record(
            db,
            tenant_id=user.tenant_id,
            actor=principal_of(user).actor,
            action="user.oidc_linked",
            subject=user.id,
            reason=f"signed in through {issuer}" + (" (invitation accepted)" if accepted else ""),
            after={"email": user.email, "role": user.role},
        )

    def _audit_refusal(self, tenant_id: str, refused: DomainError) -> None:
        try:
            with unit_of_work(self._factory) as db:
                audit.record(
                    db,
                    tenant_id=tenant_id,
                    actor="system",
                    action="user.sign_in_refused",
                    subject=tenant_id,
                    reason=refused.detail[:500],
                    after={"method": "oidc", "field": refused.field, "status": refused.status},
                )
        except SQLAlchemyError:  # the refusal itself must still reach the person
            return
