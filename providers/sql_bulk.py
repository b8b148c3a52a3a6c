"""Append many rows at once, skipping the ones whose key is already stored, at the driver's speed.

For the monitoring flush: a row for every check a serving process answered, written by a thread of
that same process. SQLAlchemy's executemany cost ~15 us a row in Python, and any ``executemany`` on
SQLite is worse under load: ``sqlite3`` releases the GIL around every row's step, and a thread that
must win the GIL back from a busy event loop waits out the switch interval (5 ms) each time (a
probe with a busy main thread: 5.8 ms and 87 us of CPU a row, against 10 us a row here). Here
the rows arrive as tuples in the order of ``columns``, each column type's own bind processor runs
on its values (so the stored form is exactly what the ORM writes and reads back), and the driver
takes the batch whole:

- SQLite: one JSON document per 10,000 rows and one ``INSERT ... SELECT ... FROM json_each(?)
  ... ON CONFLICT DO NOTHING`` for each: the GIL is released once a statement, not once a row;
- PostgreSQL (psycopg 3): ``COPY`` into a session temporary table, then one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (about a microsecond a row on the client; an
  ``executemany`` costs eleven).

Runs on the caller's connection, inside its transaction: the rows commit or roll back with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table

SQLITE_CHUNK_ROWS = 10_000  # a statement's JSON document: a few MB at most


def insert_new_rows(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in the order of ``columns``) into ``table``; a row whose primary key
    is already stored is skipped; of rows repeating a key within ``rows`` one is kept (dedupe first
    if it matters which)."""
    if not rows:
        return
    dialect = connection.dialect
    processors: list[Callable[[Any], Any] | None] = [
        # dialect_impl: the dialect's own type (SQLite's DATETIME formats the text it stores); a
        # TypeDecorator's bind_processor alone would hand the driver a datetime to adapt its way.
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in columns
    ]
    if any(processors):
        rows = [
            tuple(v if p is None or v is None else p(v) for v, p in zip(row, processors, strict=True))
            for row in rows
        ]
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    names = ", ".join(quote(name) for name in columns)
    driver = connection.connection.driver_connection
    if dialect.name == "sqlite":
        picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
        # WHERE true: SQLite's grammar needs it between SELECT ... FROM and ON CONFLICT.
        sql = (
            f"INSERT INTO {target} ({names}) SELECT {picks} FROM json_each(?) WHERE true "
            "ON CONFLICT DO NOTHING"
        )
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            for i in range(0, len(rows), SQLITE_CHUNK_ROWS):
                cursor.execute(sql, (json.dumps(rows[i : i + SQLITE_CHUNK_ROWS], ensure_ascii=False),))
        finally:
            cursor.close()
    elif dialect.name == "postgresql" and dialect.driver == "psycopg":
        staging = quote(f"bulk_{table.name}")
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            # Created once per connection; emptied by every commit or rollback.
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
                f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING"
            )
            cursor.execute(f"TRUNCATE {staging}")  # the next batch of this transaction starts empty
    else:
        raise NotImplementedError(f"insert_new_rows: no bulk path for {dialect.name}+{dialect.driver}")
