"""One spool directory per process; a dead process's spool is taken over by the next to start."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from control_plane.scoring.spool import FlaggedSpool
from control_plane.scoring.spool_dirs import SpoolDirectory, spool_dirs

# A process that spools three records and dies without any cleanup (like kill -9).
_DIES = """
import os, sys
from pathlib import Path
from control_plane.scoring.spool import FlaggedSpool
from control_plane.scoring.spool_dirs import SpoolDirectory
d = SpoolDirectory(Path(sys.argv[1]))
spool = FlaggedSpool(d.path)
for i in range(3):
    spool.append({"tenant_id": "ten_a", "flagged_id": f"flg_{i}", "payload": {}})
print(d.path.name, flush=True)
os._exit(137)
"""


def _dead_process_spool(root: Path) -> str:
    done = subprocess.run([sys.executable, "-c", _DIES, str(root)], capture_output=True, text=True)
    assert done.returncode == 137, done.stderr
    return done.stdout.strip()


def test_each_process_gets_its_own_locked_directory(tmp_path: Path) -> None:
    a, b = SpoolDirectory(tmp_path), SpoolDirectory(tmp_path)
    assert a.path != b.path and a.path.parent == b.path.parent == tmp_path
    FlaggedSpool(a.path).append({"tenant_id": "t", "flagged_id": "f", "payload": {}})
    # A live owner's directory is never taken over.
    assert SpoolDirectory(tmp_path).adopted == 0 and a.path.exists()
    assert set(spool_dirs(tmp_path)) >= {tmp_path, a.path, b.path}


def test_the_spool_of_a_killed_process_is_drained_by_the_next_one(tmp_path: Path) -> None:
    dead = _dead_process_spool(tmp_path)
    assert (tmp_path / dead).is_dir()
    heir = SpoolDirectory(tmp_path)
    assert heir.adopted == 1 and not (tmp_path / dead).exists()
    got: list[Mapping[str, Any]] = []
    assert FlaggedSpool(heir.path).drain(got.append) == 3
    assert [r["flagged_id"] for r in got] == ["flg_0", "flg_1", "flg_2"]
    # Taken once: a later process finds nothing more to adopt.
    assert SpoolDirectory(tmp_path).adopted == 0


def test_records_left_at_the_root_by_the_old_layout_are_taken_over(tmp_path: Path) -> None:
    old = FlaggedSpool(tmp_path)
    old.append({"tenant_id": "t", "flagged_id": "f_old", "payload": {}})
    old.close()
    heir = SpoolDirectory(tmp_path)
    got: list[Mapping[str, Any]] = []
    FlaggedSpool(heir.path).drain(got.append)
    assert [r["flagged_id"] for r in got] == ["f_old"]
    assert not list(tmp_path.glob("seg-*.jsonl"))


def test_a_closed_directory_with_nothing_left_is_removed(tmp_path: Path) -> None:
    d = SpoolDirectory(tmp_path)
    spool = FlaggedSpool(d.path)
    spool.append({"tenant_id": "t", "flagged_id": "f", "payload": {}})
    spool.drain(lambda _r: None)
    spool.close()
    d.close()
    assert not d.path.exists()
