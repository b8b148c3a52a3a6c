"""``fraudrail serve`` for bench-loop's throughput rounds, with production monitoring on or off.

Same composition as the CLI's single-process serve (migrate, platform-admin key, ``build_state``,
``create_app``, uvicorn with no access log); ``--monitoring off`` leaves the fraud checker without
its score observer, so a check is neither counted into drift bins nor kept as scored traffic.

    FRAUDRAIL_HOME=/tmp/x .venv/bin/python bench/loop_server.py --port 8011 --monitoring off
"""

from __future__ import annotations

import argparse

import uvicorn

from control_plane.app import create_app
from control_plane.bootstrap.admin_key import ensure_admin_key
from control_plane.bootstrap.state import build_state
from control_plane.db import make_engine, make_session_factory
from control_plane.migrate import upgrade
from control_plane.settings import AppSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--monitoring", choices=("on", "off"), default="on")
    args = parser.parse_args()
    settings = AppSettings(port=args.port)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    token = ensure_admin_key(make_session_factory(engine))
    engine.dispose()
    state = build_state(settings)
    if args.monitoring == "off":
        state.scoring.checker.monitor = None
    if token:
        print(f"FRAUDRAIL_ADMIN_KEY={token}", flush=True)
    uvicorn.run(
        create_app(settings, state), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
