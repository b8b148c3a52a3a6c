"""The HTTP floor: FastAPI parsing the same FraudCheckRequest body, answering a constant JSON of the
fraud-check's shape with orjson. Served like ``fraudrail serve`` serves the control plane (uvicorn,
1 worker, default loop / http = uvloop / httptools, no access log).

    .venv/bin/python bench/floor_app.py --port 8010
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from control_plane.scoring.schemas import FraudCheckRequest

app = FastAPI(title="fraud-check floor")

_ANSWER = {
    "decision": "LEGIT",
    "score": 0.012345,
    "model_version": "mv_floor",
    "cohort": "stable",
    "reasons": [],
    "degraded": False,
    "degraded_inputs": [],
    "server_time_ms": 0.1,
}


@app.post("/v1/fraud-check")
async def fraud_check(body: FraudCheckRequest) -> Response:
    return Response(orjson.dumps({"txn_id": body.txn_id, **_ANSWER}), media_type="application/json")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Several workers need the app as an import string (each process imports it).
    target: object = app if args.workers == 1 else "floor_app:app"
    uvicorn.run(
        target,  # type: ignore[arg-type]
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
        # A worker importing FastAPI on a busy 2-core machine can miss uvicorn's 5 s health check.
        timeout_worker_healthcheck=60,
    )


if __name__ == "__main__":
    main()
