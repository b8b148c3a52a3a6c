"""The first install's progress: a bar that advances per package, pip's log kept, failures shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "pip_progress.py"


def fake_pip(lines: list[str], status: int) -> list[str]:
    body = "".join(f"print({line!r})\n" for line in lines) + f"raise SystemExit({status})\n"
    return [sys.executable, "-c", body]


def run(tmp_path: Path, lines: list[str], status: int) -> subprocess.CompletedProcess[str]:
    (tmp_path / "constraints.txt").write_text("# pins\nalpha==1.0\nbeta==2.0\ngamma==3.0\ndelta==4.0\n")
    log = tmp_path / "var" / "pip.log"
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(log), *fake_pip(lines, status)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_each_package_moves_the_bar_and_the_log_keeps_pip_whole(tmp_path: Path) -> None:
    pip_lines = [
        "Collecting alpha==1.0",
        "  Using cached alpha-1.0.whl",
        "Requirement already satisfied: beta==2.0 in ./site-packages",
        "Processing ./gamma-3.0.whl",
        "Collecting delta==4.0",
        "Installing collected packages: alpha, gamma, delta",
        "Successfully installed alpha-1.0 gamma-3.0 delta-4.0",
    ]
    done = run(tmp_path, pip_lines, 0)
    assert done.returncode == 0, done.stderr
    # Not a terminal: one line per tenth of the pins (4 pins: every package), then the last phase.
    assert "1/4 packages resolved (alpha==1.0)" in done.stdout
    assert "4/4 packages resolved (delta==4.0)" in done.stdout
    assert "installing the collected packages" in done.stdout and done.stdout.rstrip().endswith("done")
    assert (tmp_path / "var" / "pip.log").read_text().splitlines() == pip_lines


def test_a_failing_pip_returns_its_status_and_shows_the_end_of_its_log(tmp_path: Path) -> None:
    done = run(tmp_path, ["Collecting nothing-here", "ERROR: No matching distribution found"], 3)
    assert done.returncode == 3
    assert "pip failed (exit 3)" in done.stdout
    assert "ERROR: No matching distribution found" in done.stderr
