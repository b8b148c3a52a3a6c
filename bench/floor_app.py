"""The HTTP floor: FastAPI parsing the same FraudCheckRequest body, answering a constant JSON of the
fraud-check's shape with orjson. Served like ``fraudrail serve`` serves the control plane (uvicorn,
1 worker, default loop / http = uvloop / httptools, no access log).

    .venv/bin/python bench/floor_app.py --port 8010
"""

from __future__ import annotations

import argparse

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
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
