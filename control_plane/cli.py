"""The ``fraudrail`` command: serve, worker, migrate, keys, tenants."""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated

import typer

from control_plane.settings import AppSettings

app = typer.Typer(help="Fraudrail control plane.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")


def _settings(**overrides: object) -> AppSettings:
    return AppSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


@app.command()
def migrate() -> None:
    """Apply every Alembic migration to the configured database."""
    from control_plane.migrate import upgrade

    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    typer.echo(f"migrated {settings.resolved_database_url.split('@')[-1]}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to serve on")] = None,
    worker: Annotated[bool, typer.Option(help="Run the job worker in this process")] = True,
) -> None:
    """Migrate, create the platform-admin key on first start, and serve the API."""
    import uvicorn

    from control_plane.app import create_app
    from control_plane.bootstrap import ensure_admin_key
    from control_plane.container import build_container
    from control_plane.migrate import upgrade

    settings = _settings(host=host, port=port, run_worker_in_process=worker)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    container = build_container(settings)
    token = ensure_admin_key(container.factory)
    if token:
        typer.echo("Platform-admin key (shown once; stored only as a hash):")
        typer.echo(f"FRAUDRAIL_ADMIN_KEY={token}")
    typer.echo(f"Fraudrail control plane on http://{settings.host}:{settings.port} (docs at /docs)")
    uvicorn.run(
        create_app(settings, container),
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level="info",
        access_log=False,
    )


@app.command()
def worker(once: Annotated[bool, typer.Option(help="Run runnable jobs, then exit")] = False) -> None:
    """Run the durable job worker."""
    from control_plane.app import build_worker
    from control_plane.container import build_container

    logging.basicConfig(level=logging.INFO)
    container = build_container(_settings())
    w = build_worker(container)
    if once:
        typer.echo(f"ran {w.drain()} job(s)")
        return
    stop = threading.Event()
    try:
        w.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


@keys_app.command("create-admin")
def create_admin(name: Annotated[str, typer.Option()] = "cli") -> None:
    """Issue another platform-admin key (printed once)."""
    from control_plane.auth import service
    from control_plane.auth.scopes import Scope
    from control_plane.db import make_engine, make_session_factory, unit_of_work

    settings = _settings()
    factory = make_session_factory(make_engine(settings.resolved_database_url))
    with unit_of_work(factory) as session:
        issued = service.issue_key(
            session, tenant_id=None, scope=Scope.PLATFORM_ADMIN, name=name, actor="system:cli"
        )
    typer.echo(f"FRAUDRAIL_ADMIN_KEY={issued.secret}")


@keys_app.command("list")
def list_keys(tenant_id: str) -> None:
    """List a tenant's keys (ids and prefixes only)."""
    from control_plane.auth import service
    from control_plane.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(_settings().resolved_database_url))
    with factory() as session:
        for k in service.list_keys(session, tenant_id):
            state = "revoked" if k.revoked_at else "active"
            typer.echo(f"{k.id}\t{k.scope}\t{state}\t{k.name}")


@tenants_app.command("list")
def list_tenants() -> None:
    """List tenants with their lifecycle state."""
    from control_plane.db import make_engine, make_session_factory
    from control_plane.tenants import repository

    factory = make_session_factory(make_engine(_settings().resolved_database_url))
    with factory() as session:
        for t in repository.list_all(session, limit=1000):
            typer.echo(f"{t.id}\t{t.slug}\t{t.tier}\t{t.status}")


@tenants_app.command("show")
def show_tenant(tenant_id: str) -> None:
    """Print one tenant as JSON."""
    from control_plane.db import make_engine, make_session_factory
    from control_plane.tenants import repository
    from control_plane.tenants.router import tenant_out

    factory = make_session_factory(make_engine(_settings().resolved_database_url))
    with factory() as session:
        typer.echo(
            json.dumps(tenant_out(repository.get(session, tenant_id)).model_dump(mode="json"), indent=2)
        )


if __name__ == "__main__":
    app()
