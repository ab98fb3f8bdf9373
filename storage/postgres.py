"""The same repository on PostgreSQL, for bots that run on more than one machine.

The repository's SQL is written once, in the subset both engines speak; this module is the thin
second dialect under it. :class:`PostgresConnection` offers the few calls the repository makes of
an aiosqlite connection (``execute``, ``execute_fetchall``, ``executemany``, ``in_transaction``),
turns SQLite's ``?`` and ``:name`` placeholders into psycopg's, and returns rows that, like
``sqlite3.Row``, answer both ``row[0]`` and ``row["name"]``.

A write transaction takes one advisory lock before its first read (:func:`begin_write`): the
same discipline as SQLite's ``BEGIN IMMEDIATE``, so a quota check and the row it allows are one
atomic step across every process on every machine, under PostgreSQL's default isolation. The
schema is the numbered files in ``schema/postgresql/``, version for version the SQLite ones, and
the version reached is kept in ``melodybot_schema``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from storage.db import SchemaTooNew, StorageError, migrations

log = logging.getLogger(__name__)

URL_SCHEMES = ("postgresql", "postgres")
# Arbitrary but fixed 64-bit keys: every melodybot process agrees on them, nothing else uses them.
WRITE_LOCK = 0x6D656C6F_64790001  # "melody" + 1
MIGRATION_LOCK = 0x6D656C6F_64790002
OWNER_LOCKS = 0x6D656C6F  # the first key of every process's "I am alive" lock (32 bits)
DISK_FULL = "53100"


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme in URL_SCHEMES


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc))


class Row(tuple):
    """A result row answering by position and by column name, as ``sqlite3.Row`` does."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return super().__getitem__(self._index[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.AsyncCursor) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


_QUOTED = re.compile(r"('(?:[^']|'')*')")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's placeholders (``?``, ``:name``) as psycopg's (``%s``, ``%(name)s``), outside
    string literals."""
    parts = _QUOTED.split(sql)
    for i in range(0, len(parts), 2):  # the even parts are outside string literals
        text = parts[i].replace("%", "%%").replace("?", "%s")
        parts[i] = _NAMED.sub(r"%(\1)s", text)
    return "".join(parts)


async def open_connection(url: str, **options: Any) -> psycopg.AsyncConnection:
    """An autocommit connection, or a :class:`StorageError` saying what to check (never the
    password); for the repository and the job queue alike."""
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, **options)
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise StorageError(
            f"cannot reach the database {redacted(url)} ({reason}): check that PostgreSQL "
            "runs there and that MELODYBOT_DATABASE_URL names the right user and database."
        ) from None


class PostgresCursor:
    """What a finished statement left: its rows and how many rows it changed."""

    def __init__(self, rows: list[Row], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    async def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[Row]:
        return list(self._rows)

    async def close(self) -> None:
        """Nothing to let go of: the rows were read when the statement ran."""


class PostgresConnection:
    """One psycopg connection in autocommit mode: every transaction is an explicit ``BEGIN``."""

    def __init__(self, connection: psycopg.AsyncConnection, url: str):
        self._connection = connection
        self.url = url

    @classmethod
    async def connect(cls, url: str) -> PostgresConnection:
        return cls(await open_connection(url, row_factory=_row_factory), url)

    @property
    def in_transaction(self) -> bool:
        status = self._connection.info.transaction_status
        return status != psycopg.pq.TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self._connection.broken or self._connection.closed

    async def execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> PostgresCursor:
        async with self._connection.cursor() as cursor:
            if params:
                await cursor.execute(translate(sql), _params(params))
            else:  # as written: no placeholders to fill, and a script may hold many statements
                await cursor.execute(sql)
            rows = await cursor.fetchall() if cursor.description is not None else []
            return PostgresCursor(rows, cursor.rowcount)

    async def execute_fetchall(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[Row]:
        return await (await self.execute(sql, params)).fetchall()

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        batch = [_params(params) for params in seq]
        if batch:
            async with self._connection.cursor() as cursor:
                await cursor.executemany(translate(sql), batch)

    async def close(self) -> None:
        await self._connection.close()


def _params(params: Sequence[Any] | dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
    """Booleans as 0/1, as SQLite stores them (the columns are integers on both engines)."""
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


async def begin_write(connection: PostgresConnection) -> None:
    """``BEGIN`` and the write lock, held until COMMIT or ROLLBACK (see the module's note)."""
    await connection.execute("BEGIN")
    await connection.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))


async def hold_owner(connection: PostgresConnection, owner: str) -> None:
    """A session lock named after the process, held until its connection closes."""
    await connection.execute("SELECT pg_advisory_lock(?::int, hashtext(?))", (OWNER_LOCKS, owner))


async def owner_alive(connection: PostgresConnection, owner: str) -> bool:
    """Whether some connection holds ``owner``'s lock: its process is alive, wherever it runs."""
    rows = await connection.execute_fetchall(
        "SELECT pg_try_advisory_lock(?::int, hashtext(?))", (OWNER_LOCKS, owner)
    )
    if rows[0][0]:  # nobody held it: let it go again, the process is gone
        await connection.execute(
            "SELECT pg_advisory_unlock(?::int, hashtext(?))", (OWNER_LOCKS, owner)
        )
        return False
    return True


def is_full(error: BaseException) -> bool:
    return isinstance(error, psycopg.Error) and getattr(error, "sqlstate", None) == DISK_FULL


_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS melodybot_schema (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    version  INTEGER NOT NULL)"""


async def schema_version(connection: PostgresConnection) -> int:
    rows = await connection.execute_fetchall(
        "SELECT version FROM melodybot_schema"
        if await _has_version_table(connection)
        else "SELECT 0 AS version"
    )
    return int(rows[0][0]) if rows else 0


async def _has_version_table(connection: PostgresConnection) -> bool:
    rows = await connection.execute_fetchall("SELECT to_regclass('melodybot_schema') IS NOT NULL")
    return bool(rows[0][0])


async def migrate(connection: PostgresConnection, target: int | None = None) -> int:
    """Apply every migration above the database's version, each in its own transaction under a
    lock, so processes starting together apply each one once (as :func:`storage.db.migrate`)."""
    shipped = migrations("postgresql")
    latest = shipped[-1].version
    target = latest if target is None else target
    if not 0 <= target <= latest:
        raise ValueError(f"target version {target} outside 0..{latest}")
    for migration in shipped:
        if migration.version > target:
            break
        await connection.execute("BEGIN")
        try:
            await connection.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            await connection.execute(_VERSION_TABLE)
            current = await schema_version(connection)
            if current > latest:
                raise SchemaTooNew(
                    f"database is at schema {current}, this code knows up to {latest}"
                )
            if current >= migration.version:
                await connection.execute("ROLLBACK")
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                """INSERT INTO melodybot_schema (version) VALUES (?)
                   ON CONFLICT (only_row) DO UPDATE SET version = excluded.version""",
                (migration.version,),
            )
            await connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                await connection.execute("ROLLBACK")
            raise
        log.info("database migrated to schema %d (%s)", migration.version, migration.name)
    return await schema_version(connection)


__all__ = [
    "URL_SCHEMES",
    "PostgresConnection",
    "Row",
    "begin_write",
    "is_full",
    "is_postgres_url",
    "migrate",
    "redacted",
    "schema_version",
    "translate",
]
