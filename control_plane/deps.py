"""Typed FastAPI dependencies (``Annotated`` aliases)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from control_plane.auth.scopes import Principal
from control_plane.auth.service import KeyVerifier
from control_plane.errors import Forbidden, Unauthenticated
from control_plane.settings import AppSettings
from guardrails.policy import PolicyEngine
from providers.ports import (
    EventBus,
    FeatureCache,
    FlaggedTransactionStore,
    ModelHost,
    ObjectStore,
    RollbackLog,
)

T = TypeVar("T")
Templates = dict[str, dict[str, Any]]


def provided(kind: Any) -> Callable[[Request], Any]:
    """A dependency answering the object the composition root provides under ``kind`` (a port, a
    runtime): routes name the narrow type they need, never the whole process state."""

    def dependency(request: Request) -> Any:
        return request.app.state.provided[kind]

    dependency.__name__ = f"provided_{getattr(kind, '__name__', 'templates')}"
    return dependency


def _provided(kind: type[T]) -> Callable[[Request], T]:
    return cast(Callable[[Request], T], provided(kind))


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(provided(sessionmaker))]
VerifierDep = Annotated[KeyVerifier, Depends(_provided(KeyVerifier))]
SettingsDep = Annotated[AppSettings, Depends(_provided(AppSettings))]
PolicyDep = Annotated[PolicyEngine, Depends(provided(PolicyEngine))]
TemplatesDep = Annotated[Templates, Depends(provided(Templates))]
ObjectStoreDep = Annotated[ObjectStore, Depends(provided(ObjectStore))]
FeatureCacheDep = Annotated[FeatureCache, Depends(provided(FeatureCache))]
ModelHostDep = Annotated[ModelHost, Depends(provided(ModelHost))]
FlaggedStoreDep = Annotated[FlaggedTransactionStore, Depends(provided(FlaggedTransactionStore))]
EventBusDep = Annotated[EventBus, Depends(provided(EventBus))]
RollbackLogDep = Annotated[RollbackLog, Depends(provided(RollbackLog))]


def get_session(factory: SessionFactoryDep) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error.
    The outbox relay delivers the events and wakes the worker for the jobs it recorded."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer frk_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_principal(
    verifier: VerifierDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> Principal:
    token = bearer.credentials if bearer is not None else header_key
    return verifier.verify(require_token(token))


def require_token(token: str | None) -> str:
    if not token:
        raise Unauthenticated("missing API key (Authorization: Bearer <key> or X-API-Key)")
    return token


def token_from_headers(request: Request) -> str:
    """The API key of a request, read without FastAPI's dependency machinery (hot path)."""
    return require_token(
        bearer_or_api_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
    )


def bearer_or_api_key(authorization: str | None, api_key: str | None) -> str | None:
    """``Authorization: Bearer <key>`` first, else ``X-API-Key``; None when neither carries a key."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return api_key


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def platform_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_platform_admin:
        raise Forbidden("this route needs a platform-admin key")
    return principal


PlatformAdminDep = Annotated[Principal, Depends(platform_admin)]
