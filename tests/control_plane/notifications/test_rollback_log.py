"""FileRollbackLog: the RollbackLog contract, durability across instances, torn lines, purge."""

from __future__ import annotations

import json
from pathlib import Path

from providers.local.rollback_log import FileRollbackLog, MemoryRollbackLog
from providers.ports import RollbackLog, RollbackRecord
from tests.aws.contracts_extra import check_rollback_log


def rec(tenant: str, rid: str, at: str = "2025-03-01T10:00:00+00:00") -> RollbackRecord:
    return RollbackRecord(
        tenant, rid, at, "canary errors", {"metric": "5xx", "observed": 7}, {"mv_1": 10_000}
    )


def test_file_rollback_log_meets_the_contract(tmp_path: Path) -> None:
    log = FileRollbackLog(tmp_path / "rollback-log.jsonl")
    assert isinstance(log, RollbackLog)
    check_rollback_log(log)


def test_memory_rollback_log_meets_the_contract() -> None:
    check_rollback_log(MemoryRollbackLog())


def test_records_survive_a_new_instance_and_stay_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "home" / "rollback-log.jsonl"
    assert FileRollbackLog(path).append(rec("ten_a", "rb_1")) is True
    reopened = FileRollbackLog(path)
    assert reopened.append(rec("ten_a", "rb_1")) is False
    assert reopened.list("ten_a") == [rec("ten_a", "rb_1")]
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["rollback_id"] == "rb_1"


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "rollback-log.jsonl"
    log = FileRollbackLog(path)
    log.append(rec("ten_a", "rb_1"))
    with open(path, "a") as fh:
        fh.write('{"tenant_id": "ten_a", "rollb')  # a crash mid-write
    assert [r.rollback_id for r in log.list("ten_a")] == ["rb_1"]
    assert log.append(rec("ten_a", "rb_2", "2025-03-02T10:00:00+00:00")) is True
    assert [r.rollback_id for r in FileRollbackLog(path).list("ten_a")] == ["rb_2", "rb_1"]


def test_purge_rewrites_the_file_without_the_tenant(tmp_path: Path) -> None:
    path = tmp_path / "rollback-log.jsonl"
    log = FileRollbackLog(path)
    log.append(rec("ten_a", "rb_1"))
    log.append(rec("ten_b", "rb_1"))
    log.append(rec("ten_a", "rb_2"))
    assert log.purge_tenant("ten_a") == 2
    assert log.purge_tenant("ten_a") == 0
    assert [json.loads(line)["tenant_id"] for line in path.read_text().splitlines()] == ["ten_b"]
    assert not (tmp_path / "rollback-log.jsonl.tmp").exists()
    assert log.append(rec("ten_a", "rb_1")) is True  # purged ids can be recorded again
