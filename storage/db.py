"""Opening the database the one safe way, and bringing its schema up to date.

Every connection gets WAL (readers never block the writer, a crash loses nothing committed),
a busy timeout (two bot processes wait for each other instead of failing with "database is
locked") and foreign keys. Migrations are the numbered SQL files in ``schema/``, applied in order
inside one transaction each; ``PRAGMA user_version`` records how far a file has come.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import aiosqlite

BUSY_TIMEOUT_MS = 30_000
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) of every shipped migration, in order."""
    found = []
    for entry in resources.files("storage.schema").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match[1]), entry.read_text(encoding="utf-8")))
    return sorted(found)


LATEST_VERSION = migrations()[-1][0]


async def connect(path: Path) -> aiosqlite.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    connection.row_factory = aiosqlite.Row
    await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await connection.execute("PRAGMA journal_mode = WAL")
    await connection.execute("PRAGMA synchronous = NORMAL")
    await connection.execute("PRAGMA foreign_keys = ON")
    return connection


async def schema_version(connection: aiosqlite.Connection) -> int:
    async with connection.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def migrate(connection: aiosqlite.Connection, target: int | None = None) -> int:
    """Apply every migration above the file's version (up to ``target``); safe to run again.

    ``BEGIN IMMEDIATE`` takes the write lock before reading the version, so two processes starting
    at once cannot both apply the same migration.
    """
    target = LATEST_VERSION if target is None else target
    for version, sql in migrations():
        if version > target:
            break
        await connection.execute("BEGIN IMMEDIATE")
        try:
            if await schema_version(connection) >= version:
                await connection.execute("ROLLBACK")
                continue
            for statement in _statements(sql):
                await connection.execute(statement)
            await connection.execute(f"PRAGMA user_version = {version}")
            await connection.execute("COMMIT")
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
    return await schema_version(connection)


def _statements(sql: str) -> list[str]:
    """Split a migration file into statements (sqlite3.complete_statement knows about triggers)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def backup(source: Path, destination: Path) -> None:
    """A consistent copy of a live database by SQLite's online backup API, safe while bots write."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(destination)
    try:
        with dst:
            src.backup(dst)
        result = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"backup failed its integrity check: {result}")
    finally:
        src.close()
        dst.close()
