"""scripts/services.sh from a checkout the `postgres` user cannot enter (root in /root, a 0700 home)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


# start_services installs PostgreSQL and Redis when missing; in CI (root) this never skips.
@pytest.mark.skipif(os.geteuid() != 0 and not IN_CI, reason="only root runs the cluster as another user")
def test_services_start_and_stop_from_a_0700_folder(tmp_path: Path) -> None:
    private = tmp_path / "private"
    (private / "clone" / "scripts").mkdir(parents=True)
    private.chmod(0o700)
    shutil.copy(ROOT / "scripts" / "services.sh", private / "clone" / "scripts" / "services.sh")
    script = (
        "source scripts/services.sh; start_services; "
        'echo "RUN_DIR=$RUN_DIR"; '
        "redis-cli -p $REDIS_PORT ping; "
        '"$PGBIN/psql" -h 127.0.0.1 -p $PG_PORT -U app -tAc "select 40 + 2" fraudrail_test; '
        "stop_services"
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=private / "clone", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    run_dir = Path(next(line for line in lines if line.startswith("RUN_DIR="))[len("RUN_DIR=") :])
    assert "PONG" in lines and "42" in lines
    assert not str(run_dir).startswith(str(private))  # the cluster's data is outside the checkout
    assert not run_dir.exists()  # and cleaned up
