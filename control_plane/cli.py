"""The ``fraudrail`` command: serve, worker, migrate, keys, tenants."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

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
    return AppSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def _fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit: what went wrong and what to do, never a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


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


@app.command()
def simulate(
    out: Annotated[str, typer.Option(help="CSV or Parquet file to write")],
    customers: Annotated[int, typer.Option(min=1)] = 500,
    terminals: Annotated[int, typer.Option(min=1)] = 1000,
    days: Annotated[int, typer.Option(min=1)] = 90,
    seed: Annotated[int, typer.Option()] = 0,
    start: Annotated[str, typer.Option(help="First day (UTC)")] = "2026-06-01",
    labels: Annotated[bool, typer.Option(help="Keep the is_fraud / fraud_scenario columns")] = True,
) -> None:
    """Write simulated card transactions (the handbook's generator) for demos and tests."""
    from pathlib import Path

    from fraud_model.simulator import simulate as run

    if not Path(out).resolve().parent.is_dir():
        _fail(f"cannot write {out}: no such folder {Path(out).resolve().parent}")
    frame = run(customers, terminals, days, start_date=start, seed=seed)
    if not labels:
        frame = frame.drop(columns=["is_fraud", "fraud_scenario"])
    if out.endswith(".parquet"):
        frame.to_parquet(out, index=False)
    else:
        # Writing is the slow part of a big file: in chunks, with a progress bar.
        chunk = 50_000
        with (
            open(out, "w", newline="") as fh,
            typer.progressbar(range(0, len(frame), chunk), label=f"writing {out}", file=sys.stderr) as bar,
        ):
            for lo in bar:
                frame.iloc[lo : lo + chunk].to_csv(fh, index=False, header=lo == 0)
    rate = f", fraud rate {frame['is_fraud'].mean():.2%}" if labels else ""
    typer.echo(f"wrote {len(frame)} transactions to {out}{rate}")


REPLAY_COLUMNS = ("txn_id", "card_token", "terminal_id", "ts", "amount")


@app.command()
def replay(
    file: Annotated[str, typer.Option(help="CSV of transactions (e.g. from `fraudrail simulate`)")],
    key: Annotated[str, typer.Option(envvar="FRAUDRAIL_APP_KEY", help="The tenant's app key")],
    url: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDRAIL_URL",
            help="The server (default: http://FRAUDRAIL_HOST:FRAUDRAIL_PORT, where `make run` serves)",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 1000,
    skip: Annotated[int, typer.Option(min=0, help="Rows to skip first (send later traffic)")] = 0,
    prefix: Annotated[
        str, typer.Option(help="Prepended to txn ids, so a replay is not an idempotent retry")
    ] = "",
) -> None:
    """Send transactions to POST /v1/fraud-check like a tenant's app would (honouring 429 / 503
    Retry-After). Exits 1 when any row was not answered 200, 2 when nothing can be sent."""
    from pathlib import Path

    import pandas as pd

    if url is None:
        settings = _settings()
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        url = f"http://{host}:{settings.port}"
    if not Path(file).is_file():
        _fail(f"no such file: {file}", 2)
    try:
        frame = pd.read_csv(file, skiprows=range(1, skip + 1), nrows=limit)
    except (ValueError, OSError) as exc:
        _fail(f"cannot read {file} as CSV: {exc}", 2)
    missing = [c for c in REPLAY_COLUMNS if c not in frame.columns]
    if missing:
        _fail(f"{file} lacks the column(s) {', '.join(missing)}", 2)
    counts, versions, failures = _send_rows(url, key, frame.to_dict("records"), prefix)
    typer.echo(f"decisions: {dict(counts)}")
    typer.echo(f"answered by: {dict(versions)}")
    if failures:
        shown = "; ".join(f"{n} x {what}" for what, n in failures.most_common(3))
        _fail(f"{sum(failures.values())} of {len(frame)} row(s) were not scored: {shown}")


def _send_rows(
    url: str, key: str, rows: list[dict[Any, Any]], prefix: str
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    import time

    import httpx
    import pandas as pd

    counts: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    with (
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http,
        typer.progressbar(rows, label=f"replaying to {url}", file=sys.stderr) as bar,
    ):
        for row in bar:
            body = {
                "txn_id": f"{prefix}{row['txn_id']}",
                "card_token": str(row["card_token"]),
                "terminal_id": str(row["terminal_id"]),
                "timestamp": str(pd.Timestamp(str(row["ts"])).isoformat()),
                "amount": f"{float(str(row['amount'])):.2f}",
                "currency": str(row.get("currency", "EUR")),
            }
            try:
                resp = http.post("/v1/fraud-check", json=body)
                retries = 0
                # 429: rate limited; 503: e.g. the flagged spool cannot take the record yet. Both say
                # when to come back, and the same txn_id is scored again then (nothing counted twice).
                while resp.status_code in (429, 503) and "retry-after" in resp.headers and retries < 30:
                    retries += 1
                    time.sleep(min(float(resp.headers["retry-after"]), 30.0))
                    resp = http.post("/v1/fraud-check", json=body)
            except httpx.HTTPError as exc:
                _fail(f"cannot reach {url}: {exc}", 2)
            if resp.status_code in (401, 403):
                # Every other row would get the same answer: stop at the first.
                _fail(f"{url} refused the key with {resp.status_code}: {_problem_detail(resp)}", 2)
            if resp.status_code != 200:
                failures[f"HTTP {resp.status_code} ({_problem_detail(resp)})"] += 1
                continue
            answer = resp.json()
            counts[answer["decision"]] += 1
            versions[f"{answer['model_version']} ({answer['cohort']})"] += 1
    return counts, versions, failures


def _problem_detail(resp: Any) -> str:
    try:
        body = resp.json()
    except ValueError:
        return str(resp.text[:200])
    return str(body.get("detail") or body.get("title")) if isinstance(body, dict) else str(body)[:200]


@app.command("webhook-sink")
def webhook_sink(port: Annotated[int, typer.Option()] = 9999) -> None:
    """A local Slack / Teams webhook receiver that prints every message it gets (for demos)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
            try:
                shown = json.dumps(json.loads(body), indent=2)
            except ValueError:
                shown = body.decode(errors="replace")
            typer.echo(f"--- POST {self.path}\n{shown}")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"1" if "teams" in self.path else b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return

    typer.echo(f"webhook sink on http://127.0.0.1:{port} (/slack, /teams)")
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()


def _spool() -> FlaggedSpool:
    from control_plane.scoring.spool import FlaggedSpool

    settings = _settings()
    return FlaggedSpool(settings.home / settings.spool_dir_name)


@spool_app.command("status")
def spool_status() -> None:
    """Records waiting for the flagged store and the review queue, and dead letters."""
    spool = _spool()
    dead = spool.dead_letters()
    typer.echo(json.dumps({"spool": str(spool.dir), "pending": spool.pending(), "dead_letters": len(dead)}))
    for entry in dead:
        record = entry.get("record", {})
        typer.echo(f"dead: {record.get('tenant_id')} {record.get('flagged_id')}: {entry.get('error')}")
    spool.close()


@spool_app.command("replay-dead")
def spool_replay_dead() -> None:
    """Put dead-lettered flagged records back in the spool (a running server delivers them)."""
    spool = _spool()
    typer.echo(f"requeued {spool.requeue_dead()} record(s)")
    spool.close()


if __name__ == "__main__":
    app()
