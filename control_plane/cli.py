"""The ``fraudrail`` command: serve, worker, migrate, keys, tenants."""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from control_plane.settings import AppSettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from control_plane.scoring.spool import FlaggedSpool

app = typer.Typer(help="Fraudrail control plane.", no_args_is_help=True, pretty_exceptions_enable=False)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
spool_app = typer.Typer(help="The flagged-transaction spool.", no_args_is_help=True)
app.add_typer(spool_app, name="spool")


def _settings(**overrides: object) -> AppSettings:
    from pydantic import ValidationError

    try:
        return AppSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        # An unsafe or invalid combination: say what is wrong in one line, never a traceback.
        _fail("; ".join(str(e.get("msg", e)).removeprefix("Value error, ") for e in exc.errors()))


from control_plane.cli_tools import _fail, replay, simulate, webhook_sink  # noqa: E402

app.command()(simulate)
app.command()(replay)
app.command("webhook-sink")(webhook_sink)


def _factory(settings: AppSettings | None = None) -> sessionmaker[Session]:
    """A session factory on a migrated database (every ORM table known, so foreign keys resolve)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    import control_plane.models  # noqa: F401 - registers every table (api_keys references tenants)
    from control_plane.db import make_engine, make_session_factory

    settings = settings or _settings()
    url = settings.resolved_database_url
    engine = make_engine(url)
    shown = url.split("@")[-1]
    try:
        migrated = inspect(engine).has_table("alembic_version")
    except SQLAlchemyError as exc:
        _fail(f"cannot open the database {shown}: {str(exc).splitlines()[0]}")
    if not migrated:
        _fail(
            f"no Fraudrail database at {shown} (FRAUDRAIL_HOME={settings.home}): run `fraudrail migrate` "
            "or `make run` first, or set FRAUDRAIL_HOME / FRAUDRAIL_DATABASE_URL to the server's"
        )
    return make_session_factory(engine)


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
    workers: Annotated[
        int | None, typer.Option(min=1, help="Server processes on the port (FRAUDRAIL_WORKERS)")
    ] = None,
) -> None:
    """Migrate, create the platform-admin key on first start, and serve the API."""
    import os

    import uvicorn

    from control_plane.bootstrap.admin_key import ensure_admin_key
    from control_plane.db import make_engine, make_session_factory
    from control_plane.migrate import upgrade

    # Validated here, once, so an unsafe combination stops before anything starts.
    settings = _settings(host=host, port=port, run_worker_in_process=worker, workers=workers)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    token = ensure_admin_key(make_session_factory(engine))
    engine.dispose()
    target: object = "control_plane.app:create_app"
    if settings.workers == 1:
        # One process: build it here, so the lines below mean "about to listen" (as they always did).
        from control_plane.app import create_app
        from control_plane.bootstrap.state import build_state

        target = create_app(settings, build_state(settings))
    if token:
        typer.echo("Platform-admin key (shown once; stored only as a hash):")
        typer.echo(f"FRAUDRAIL_ADMIN_KEY={token}")
    typer.echo(f"Fraudrail control plane on http://{settings.host}:{settings.port} (docs at /docs)")
    typer.echo(f"State in FRAUDRAIL_HOME={settings.home}")
    # With several processes each builds its own state (adapters, threads, spool) from the
    # environment through the app factory, so the command-line options travel as variables.
    os.environ.update(
        FRAUDRAIL_HOST=settings.host,
        FRAUDRAIL_PORT=str(settings.port),
        FRAUDRAIL_RUN_WORKER_IN_PROCESS=str(settings.run_worker_in_process).lower(),
        FRAUDRAIL_WORKERS=str(settings.workers),
    )
    uvicorn.run(
        target,  # type: ignore[arg-type]  # an ASGI app or its factory's import string
        factory=isinstance(target, str),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=False,
        # A worker builds its whole state before answering uvicorn's health check; on a busy host
        # that takes longer than uvicorn's 5 s default, which then kills and restarts it forever.
        timeout_worker_healthcheck=60,
    )


@app.command()
def worker(once: Annotated[bool, typer.Option(help="Run runnable jobs, then exit")] = False) -> None:
    """Run the durable job worker (jobs, periodic jobs, the outbox's leftovers)."""
    from control_plane.bootstrap.bus import close_bus, start_bus
    from control_plane.bootstrap.state import build_state
    from control_plane.metrics_endpoint import start_metrics_listener

    logging.basicConfig(level=logging.INFO)
    # A long-running worker of its own: the settings refuse per-process state it could not share
    # with the API. ``--once`` (drain what is runnable, e.g. while the server is stopped) is not one.
    settings = _settings() if once else _settings(run_worker_in_process=False)
    state = build_state(settings)
    w = state.worker
    if once:
        state.outbox.deliver_due(settle_s=0)
        typer.echo(f"ran {w.drain()} job(s)")
        return
    start_bus(state.providers.event_bus)  # work events (flagged records, labels, alarms) reach it too
    listener = None
    if settings.metrics_listener_port is not None:
        # The worker has no HTTP API: its metrics (a canary's weight, rollbacks) get their own port.
        listener = start_metrics_listener(state, settings.host, settings.metrics_listener_port)
    stop = threading.Event()
    try:
        w.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if listener is not None:
            listener.shutdown()
        close_bus(state.providers.event_bus)
        state.engine.dispose()


@keys_app.command("create-admin")
def create_admin(name: Annotated[str, typer.Option()] = "cli") -> None:
    """Issue another platform-admin key (printed once)."""
    from control_plane.auth import service
    from control_plane.auth.scopes import Scope
    from control_plane.db import unit_of_work

    factory = _factory()
    with unit_of_work(factory) as session:
        issued = service.issue_key(
            session, tenant_id=None, scope=Scope.PLATFORM_ADMIN, name=name, actor="system:cli"
        )
    typer.echo(f"FRAUDRAIL_ADMIN_KEY={issued.secret}")


@keys_app.command("list")
def list_keys(tenant_id: str) -> None:
    """List a tenant's keys (ids and prefixes only)."""
    from control_plane.auth import service

    factory = _factory()
    with factory() as session:
        for k in service.list_keys(session, tenant_id):
            state = "revoked" if k.revoked_at else "active"
            typer.echo(f"{k.id}\t{k.scope}\t{state}\t{k.name}")


@tenants_app.command("list")
def list_tenants() -> None:
    """List tenants with their lifecycle state."""
    from control_plane.tenants import repository

    factory = _factory()
    with factory() as session:
        for t in repository.list_all(session, limit=1000):
            typer.echo(f"{t.id}\t{t.slug}\t{t.tier}\t{t.status}")


@tenants_app.command("show")
def show_tenant(tenant_id: str) -> None:
    """Print one tenant as JSON."""
    from control_plane.errors import NotFound
    from control_plane.tenants import repository
    from control_plane.tenants.router import tenant_out

    factory = _factory()
    with factory() as session:
        try:
            tenant = repository.get(session, tenant_id)
        except NotFound:
            _fail(f"no tenant {tenant_id}")
        typer.echo(json.dumps(tenant_out(tenant).model_dump(mode="json"), indent=2))


def _spools() -> list[FlaggedSpool]:
    """The spool root and every process's spool under it (each process writes its own)."""
    from control_plane.scoring.spool import FlaggedSpool
    from control_plane.scoring.spool_dirs import spool_dirs

    settings = _settings()
    return [FlaggedSpool(d) for d in spool_dirs(settings.home / settings.spool_dir_name)]


@spool_app.command("status")
def spool_status() -> None:
    """Records waiting for the flagged store and the review queue, and dead letters, in every
    process's spool."""
    settings = _settings()
    spools = _spools()
    dead = [(sp, entry) for sp in spools for entry in sp.dead_letters()]
    summary = {
        "spool": str(settings.home / settings.spool_dir_name),
        "pending": sum(sp.pending() for sp in spools),
        "dead_letters": len(dead),
    }
    typer.echo(json.dumps(summary))
    for _sp, entry in dead:
        record = entry.get("record", {})
        typer.echo(f"dead: {record.get('tenant_id')} {record.get('flagged_id')}: {entry.get('error')}")
    for sp in spools:
        sp.close()


@spool_app.command("replay-dead")
def spool_replay_dead() -> None:
    """Put dead-lettered flagged records back in their spools (the running servers deliver them)."""
    spools = _spools()
    typer.echo(f"requeued {sum(sp.requeue_dead() for sp in spools)} record(s)")
    for sp in spools:
        sp.close()


if __name__ == "__main__":
    app()
