"""providers.sql_bulk on the test database (SQLite, or PostgreSQL with FRAUDRAIL_TEST_DB=postgres):
rows written at the driver read back through the ORM exactly as ORM-written rows do, keys already
stored are skipped, and the batch commits or rolls back with its transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import cast

import pytest
from sqlalchemy import Table, select, text

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.monitoring.orm import ScoredTransaction
from providers import sql_bulk
from providers.sql_bulk import insert_new_rows

TABLE = cast(Table, ScoredTransaction.__table__)
COLUMNS = ("tenant_id", "txn_id", "ts", "amount", "card_token", "terminal_id", "score", "decision",
           "model_version", "cohort")  # fmt: skip
T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def row(txn: str, *, at: datetime = T0, amount: str = "12.34", decision: str = "LEGIT") -> tuple[object, ...]:
    return ("ten_a", txn, at, Decimal(amount), "card-1", "term-1", 0.125, decision, None, "stable")


def stored(container: State) -> dict[str, tuple[object, ...]]:
    with container.factory() as session:
        rows = session.scalars(select(ScoredTransaction))
        return {r.txn_id: tuple(getattr(r, c) for c in COLUMNS) for r in rows}


def test_rows_read_back_as_the_orm_writes_them(container: State) -> None:
    paris = timezone(timedelta(hours=1))
    with unit_of_work(container.factory) as session:
        session.add(ScoredTransaction(**dict(zip(COLUMNS, row("by-orm", at=T0), strict=True))))
        later = row("later", at=T0 + timedelta(hours=2), amount="0.05")
        insert_new_rows(
            session.connection(), TABLE, COLUMNS, [row("by-bulk", at=T0.astimezone(paris)), later]
        )
    got = stored(container)
    assert got["by-bulk"][0] == got["by-orm"][0] and got["by-bulk"][2:] == got["by-orm"][2:]
    assert got["by-bulk"][2] == T0 and got["by-bulk"][2].tzinfo is not None
    assert got["later"][3] == Decimal("0.05")
    # Stored exactly as the ORM stores them (SQLite keeps times as text: the format must be the
    # ORM's, or comparisons with bound times go wrong at the edges).
    with container.factory() as session:
        raw = text("SELECT txn_id, ts, amount, score FROM scored_transactions WHERE txn_id LIKE 'by-%'")
        stored_raw = {r[0]: tuple(r[1:]) for r in session.execute(raw)}
    assert stored_raw["by-bulk"] == stored_raw["by-orm"]
    # The stored times compare as times.
    with container.factory() as session:
        in_window = select(ScoredTransaction.txn_id).where(
            ScoredTransaction.ts >= T0 + timedelta(hours=1), ScoredTransaction.ts < T0 + timedelta(hours=3)
        )
        assert list(session.scalars(in_window)) == ["later"]


def test_keys_already_stored_or_repeated_are_skipped(container: State) -> None:
    with unit_of_work(container.factory) as session:
        insert_new_rows(session.connection(), TABLE, COLUMNS, [row("t1", decision="REVIEW")])
    with unit_of_work(container.factory) as session:
        insert_new_rows(session.connection(), TABLE, COLUMNS, [row("t1"), row("t2"), row("t2"), row("t3")])
        # A second batch in the same transaction (PostgreSQL reuses its staging table).
        insert_new_rows(session.connection(), TABLE, COLUMNS, [row("t3"), row("t4")])
    got = stored(container)
    assert sorted(got) == ["t1", "t2", "t3", "t4"]
    assert got["t1"][7] == "REVIEW"  # the stored row is kept as it was


def test_the_batch_rolls_back_with_its_transaction(container: State) -> None:
    with pytest.raises(RuntimeError), unit_of_work(container.factory) as session:
        insert_new_rows(session.connection(), TABLE, COLUMNS, [row("gone")])
        raise RuntimeError("the rest of the unit of work failed")
    assert stored(container) == {}
    with unit_of_work(container.factory) as session:
        insert_new_rows(session.connection(), TABLE, COLUMNS, [])
        insert_new_rows(session.connection(), TABLE, COLUMNS, [row("kept")])
    assert list(stored(container)) == ["kept"]


def test_batches_past_a_chunk_and_any_text_arrive_whole(
    container: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_bulk, "SQLITE_CHUNK_ROWS", 3)
    odd = ["carte-é-🃏", 'quote"back\\slash', "tab\tnew\nline", "日本", ""]
    rows = [
        ("ten_a", f"t{i}", T0 + timedelta(seconds=i), Decimal("0.10"), odd[i % len(odd)] or "x", "term",
         0.1 * i, "LEGIT", None if i % 2 else "mv_1", "stable")
        for i in range(8)
    ]  # fmt: skip
    with unit_of_work(container.factory) as session:
        insert_new_rows(session.connection(), TABLE, COLUMNS, rows)
    got = stored(container)
    assert sorted(got.values(), key=lambda r: str(r[1])) == sorted(rows, key=lambda r: str(r[1]))
