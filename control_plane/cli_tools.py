"""The ``fraudrail`` commands of the walk-throughs: simulate data, replay it, receive webhooks."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Annotated, Any, NoReturn

import typer


def _fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit: what went wrong and what to do, never a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def simulate(
    out: Annotated[str, typer.Option(help="CSV or Parquet file to write")],
    customers: Annotated[int, typer.Option(min=1)] = 500,
    terminals: Annotated[int, typer.Option(min=1)] = 1000,
    days: Annotated[int, typer.Option(min=1)] = 90,
    seed: Annotated[int, typer.Option()] = 0,
    start: Annotated[str, typer.Option(help="First day (UTC)")] = "2026-06-01",
    labels: Annotated[bool, typer.Option(help="Keep the is_fraud / fraud_scenario columns")] = True,
    drift_from_day: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="From this day on: legitimate amounts x1.6 and a card-testing fraud pattern (scenario 4)",
        ),
    ] = None,
) -> None:
    """Write simulated card transactions (the handbook's generator) for demos and tests."""
    from pathlib import Path

    from fraud_model.drift import with_concept_drift
    from fraud_model.simulator import simulate as run

    if not Path(out).resolve().parent.is_dir():
        _fail(f"cannot write {out}: no such folder {Path(out).resolve().parent}")
    frame = run(customers, terminals, days, start_date=start, seed=seed)
    if drift_from_day is not None:
        frame = with_concept_drift(frame, from_day=drift_from_day, seed=seed)
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
        from control_plane.settings import AppSettings

        settings = AppSettings()
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
