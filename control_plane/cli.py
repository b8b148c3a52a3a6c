"""The ``fraudrail`` command: serve, worker, migrate, keys, tenants."""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from control_plane.settings import AppSettings

if TYPE_CHECKING:
    from control_plane.scoring.spool import FlaggedSpool

app = typer.Typer(help="Fraudrail control plane.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
spool_app = typer.Typer(help="The flagged-transaction spool.", no_args_is_help=True)
app.add_typer(spool_app, name="spool")


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
    from control_plane.bootstrap.admin_key import ensure_admin_key
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
    from fraud_model.simulator import simulate as run

    frame = run(customers, terminals, days, start_date=start, seed=seed)
    if not labels:
        frame = frame.drop(columns=["is_fraud", "fraud_scenario"])
    if out.endswith(".parquet"):
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    rate = f", fraud rate {frame['is_fraud'].mean():.2%}" if labels else ""
    typer.echo(f"wrote {len(frame)} transactions to {out}{rate}")


@app.command()
def replay(
    file: Annotated[str, typer.Option(help="CSV of transactions (e.g. from `fraudrail simulate`)")],
    key: Annotated[str, typer.Option(envvar="FRAUDRAIL_APP_KEY", help="The tenant's app key")],
    url: Annotated[str, typer.Option()] = "http://127.0.0.1:8000",
    limit: Annotated[int, typer.Option(min=1)] = 1000,
    skip: Annotated[int, typer.Option(min=0, help="Rows to skip first (send later traffic)")] = 0,
    prefix: Annotated[
        str, typer.Option(help="Prepended to txn ids, so a replay is not an idempotent retry")
    ] = "",
) -> None:
    """Send transactions to POST /v1/fraud-check like a tenant's app would (honouring 429 Retry-After)."""
    import time
    from collections import Counter

    import httpx
    import pandas as pd

    rows = pd.read_csv(file, skiprows=range(1, skip + 1), nrows=limit).to_dict("records")
    counts: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
        for row in rows:
            body = {
                "txn_id": f"{prefix}{row['txn_id']}",
                "card_token": str(row["card_token"]),
                "terminal_id": str(row["terminal_id"]),
                "timestamp": str(pd.Timestamp(str(row["ts"])).isoformat()),
                "amount": f"{float(str(row['amount'])):.2f}",
                "currency": str(row.get("currency", "EUR")),
            }
            resp = http.post("/v1/fraud-check", json=body)
            while resp.status_code == 429:
                time.sleep(float(resp.headers.get("retry-after", "1")))
                resp = http.post("/v1/fraud-check", json=body)
            if resp.status_code != 200:
                counts[f"HTTP {resp.status_code}"] += 1
                continue
            answer = resp.json()
            counts[answer["decision"]] += 1
            versions[f"{answer['model_version']} ({answer['cohort']})"] += 1
    typer.echo(f"decisions: {dict(counts)}")
    typer.echo(f"answered by: {dict(versions)}")


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


if __name__ == "__main__":
    app()


def _spool() -> FlaggedSpool:
    from control_plane.scoring.spool import FlaggedSpool

    settings = _settings()
    return FlaggedSpool(settings.home / settings.spool_dir_name)


@spool_app.command("status")
def spool_status() -> None:
    """Records waiting for the flagged store and the review queue, and dead letters."""
    spool = _spool()
    dead = spool.dead_letters()
    typer.echo(json.dumps({"pending": spool.pending(), "dead_letters": len(dead)}))
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
