"""Moving a bot's SQLite file into PostgreSQL, once, with nothing lost (``melodybot migrate-data``).

The copy is read from a backup of the file (a consistent snapshot, taken while the bots may still
run) brought to the latest schema, so the source is never changed. Everything is written in one
PostgreSQL transaction: a failure leaves the target as empty as it was. Ids are kept as they are
(users are told "again 42"), and the target's id counters are moved past the highest id the file
ever gave out. Every table's row count is compared before the transaction commits.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from storage import db, postgres

# Parents before children, so every foreign key finds its row.
TABLES = (
    "users",
    "generations",
    "usage",
    "limits",
    "bans",
    "audit_log",
    "inbox",
    "removed_pages",
    "galleries",
)
IDENTITY_TABLES = ("users", "generations", "usage", "bans", "audit_log")


class TransferError(db.StorageError):
    """The copy could not be made; the target was left as it was."""


def copy_to_postgres(
    source: Path, url: str, *, report: Callable[[str, int], None] = lambda table, rows: None
) -> dict[str, int]:
    """Copy every row of the SQLite file ``source`` into the empty PostgreSQL database ``url``;
    returns the rows copied per table. ``report`` hears of each table as it is done."""
    if not source.is_file():
        raise TransferError(f"no database at {source}")
    with tempfile.TemporaryDirectory(prefix="melodybot-transfer-") as scratch:
        snapshot = db.backup(source, Path(scratch) / "snapshot.sqlite3")
        _bring_up_to_date(snapshot)
        _bring_up_to_date_postgres(url)
        with sqlite3.connect(snapshot) as reader:
            return _copy(reader, url, report)


def _bring_up_to_date(path: Path) -> None:
    async def migrate() -> None:
        connection = await db.connect(path)
        try:
            await db.migrate(connection)
        finally:
            await connection.close()

    asyncio.run(migrate())


def _bring_up_to_date_postgres(url: str) -> None:
    async def migrate() -> None:
        connection = await postgres.PostgresConnection.connect(url)
        try:
            await postgres.migrate(connection)
        finally:
            await connection.close()

    asyncio.run(migrate())


def _copy(
    reader: sqlite3.Connection, url: str, report: Callable[[str, int], None]
) -> dict[str, int]:
    copied: dict[str, int] = {}
    try:
        with psycopg.connect(url) as target, target.cursor() as cursor:  # one transaction
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (postgres.WRITE_LOCK,))
            for table in TABLES:
                cursor.execute(f"SELECT count(*) FROM {table}")
                if cursor.fetchone()[0]:  # type: ignore[index]
                    raise TransferError(
                        f"{postgres.redacted(url)} already holds {table}: migrate-data fills an "
                        "empty database only, so nothing there is overwritten or doubled"
                    )
            for table in TABLES:
                columns = [row[1] for row in reader.execute(f"PRAGMA table_info({table})")]
                names = ", ".join(columns)
                rows = 0
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in reader.execute(f"SELECT {names} FROM {table}"):
                        copy.write_row(row)
                        rows += 1
                cursor.execute(f"SELECT count(*) FROM {table}")
                landed = cursor.fetchone()[0]  # type: ignore[index]
                if landed != rows:
                    raise TransferError(f"{table}: {rows} rows read but {landed} written")
                copied[table] = rows
                report(table, rows)
            for table in IDENTITY_TABLES:
                highest = _highest_id_given(reader, table)
                if highest:
                    cursor.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, highest)
                    )
    except psycopg.Error as error:
        raise TransferError(
            f"copying into {postgres.redacted(url)} failed, nothing was kept there: {error}"
        ) from None
    return copied


def _highest_id_given(reader: sqlite3.Connection, table: str) -> int:
    """The highest id the file ever gave out: a deleted melody's number is never reused."""
    (highest,) = reader.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
    try:
        row = reader.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    except sqlite3.OperationalError:  # no AUTOINCREMENT table has written yet
        row = None
    return max(int(highest), int(row[0]) if row else 0)
