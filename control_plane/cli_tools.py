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
    chargeback_days: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Also play the tenant's chargeback feed: each replayed fraud (is_fraud 1) becomes a "
            "chargeback known this many days after it, posted to POST /v1/labels at the first midnight "
            "of traffic time past that (a daily file); needs --admin-key",
        ),
    ] = None,
    admin_key: Annotated[
        str | None, typer.Option(envvar="FRAUDRAIL_TENANT_ADMIN_KEY", help="The tenant admin's key")
    ] = None,
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
    needed = (*REPLAY_COLUMNS, "is_fraud") if chargeback_days is not None else REPLAY_COLUMNS
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        _fail(f"{file} lacks the column(s) {', '.join(missing)}", 2)
    feed = None
    if chargeback_days is not None:
        if not admin_key:
            _fail("--chargeback-days needs --admin-key (or FRAUDRAIL_TENANT_ADMIN_KEY)", 2)
        feed = ChargebackFeed(url, admin_key, frame, chargeback_days, prefix)
    counts, versions, failures = _send_rows(url, key, frame.to_dict("records"), prefix, feed)
    if feed is not None:
        feed.post_due(None)
        typer.echo(f"chargebacks posted: {feed.posted} (known by the last transaction's time)")
    typer.echo(f"decisions: {dict(counts)}")
    typer.echo(f"answered by: {dict(versions)}")
    if failures:
        shown = "; ".join(f"{n} x {what}" for what, n in failures.most_common(3))
        _fail(f"{sum(failures.values())} of {len(frame)} row(s) were not scored: {shown}")


class ChargebackFeed:
    """The replayed frauds' chargebacks, posted day by day as the replay's traffic time passes
    their ``known_at`` (what a tenant's daily chargeback file does), so the labels the monitoring
    loop sees are only those a real tenant would have had by then."""

    def __init__(self, url: str, admin_key: str, frame: Any, delay_days: float, prefix: str) -> None:
        import pandas as pd

        frauds = frame[frame["is_fraud"] == 1]
        ts = pd.to_datetime(frauds["ts"], utc=True)
        self.url, self.admin_key = url, admin_key
        self.pending = sorted(
            zip(ts + pd.Timedelta(days=delay_days), (f"{prefix}{t}" for t in frauds["txn_id"]), strict=True)
        )
        self.last = pd.to_datetime(frame["ts"], utc=True).max() if len(frame) else None
        self.day: Any = None
        self.posted = 0

    def passed(self, ts: Any) -> None:
        """Called with each row's time before it is sent: at a new day, yesterday's file goes."""
        import pandas as pd

        day = pd.Timestamp(str(ts)).tz_localize(None).normalize() if ts is not None else None
        if self.day is not None and day is not None and day > self.day:
            self.post_due(pd.Timestamp(day, tz="UTC"))
        self.day = day

    def post_due(self, until: Any) -> None:
        """Post every chargeback known by ``until`` (None: by the last replayed transaction)."""
        import httpx

        until = self.last if until is None else until
        due = [(k, t) for k, t in self.pending if until is not None and k <= until]
        self.pending = self.pending[len(due) :]
        items = [
            {"txn_id": t, "label": "chargeback", "known_at": k.isoformat(), "source": "chargebacks"}
            for k, t in due
        ]
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as http:
            for i in range(0, len(items), 1000):
                resp = http.post("/v1/labels", json={"items": items[i : i + 1000]})
                if resp.status_code != 200:
                    _fail(f"POST /v1/labels answered {resp.status_code}: {_problem_detail(resp)}")
                self.posted += int(resp.json()["recorded"])


def _send_rows(
    url: str, key: str, rows: list[dict[Any, Any]], prefix: str, feed: ChargebackFeed | None = None
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
            if feed is not None:
                feed.passed(row["ts"])
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
