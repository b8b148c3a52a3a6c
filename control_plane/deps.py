"""Typed FastAPI dependencies (``Annotated`` aliases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from control_plane.auth.scopes import Principal
from control_plane.container import Container
from control_plane.errors import Forbidden, Unauthenticated


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_session(container: ContainerDep) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error."""
    session = container.factory()
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
    container: ContainerDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> Principal:
    token = bearer.credentials if bearer is not None else header_key
    return container.verifier.verify(require_token(token))


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
