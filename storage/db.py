"""Opening the database the one safe way, bringing its schema up to date, and copying it live.

Every connection gets WAL (readers never block the writer, and a killed process loses nothing it
committed), a busy timeout (the Discord and Telegram processes wait for each other rather than
fail with "database is locked"), ``synchronous = FULL`` by default (a commit survives a power cut
too, not only a crash) and foreign keys. The schema is the numbered SQL files in ``schema/sqlite/``,
applied in order, one transaction each; ``PRAGMA user_version`` records how far a file has come.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import random
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import aiosqlite

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

T = TypeVar("T")


class StorageError(Exception):
    """The database file is not in a state this code may work on."""


class DatabaseDamaged(StorageError):
    """The file is not a sound SQLite database; the message says how to restore a backup."""


class StorageFull(StorageError):
    """The disk holding the database is full: nothing can be saved until space returns."""


def is_full(error: BaseException) -> bool:
    """SQLITE_FULL, or the operating system's 'no space left on device'."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "full" in str(error)
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


class SchemaTooNew(StorageError):
    """The file was migrated by newer code; running older code on it could corrupt it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


ENGINES = ("sqlite", "postgresql")


@functools.cache
def migrations(engine: str = "sqlite") -> tuple[Migration, ...]:
    """Every shipped migration for an engine in order; a gap or duplicate number is a packaging
    mistake. Both engines have the same numbers: version 5 is the same tables on either."""
    if engine not in ENGINES:
        raise ValueError(f"no migrations for {engine!r}; the engines are {ENGINES}")
    found = []
    for entry in (resources.files("storage") / "schema" / engine).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StorageError(f"migrations must be numbered 1, 2, 3… without gaps: {versions}")
    return tuple(found)


def latest_version() -> int:
    return migrations()[-1].version


def is_busy(error: sqlite3.Error) -> bool:
    """SQLITE_BUSY/LOCKED and their extended codes (BUSY_SNAPSHOT, BUSY_RECOVERY…)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(error) or "busy" in str(error)


async def retry_busy(
    operation: Callable[[], Awaitable[T]], *, deadline_s: float = BUSY_TIMEOUT_S
) -> T:
    """Run ``operation`` again while SQLite answers busy, with jittered backoff, until a deadline.

    The busy timeout already waits inside SQLite, but some busy answers skip the busy handler
    (WAL recovery, a journal-mode change racing another process), and those must not reach a
    user as "database is locked". Only busy errors are retried, so a real mistake fails at once.
    """
    delay = 0.005
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            return await operation()
        except sqlite3.OperationalError as error:
            if not is_busy(error) or time.monotonic() >= give_up:
                raise
            log.debug("database busy (%s), retrying in ~%.0f ms", error, delay * 1000)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)


async def connect(
    path: str | Path,
    *,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    synchronous: str = "FULL",
) -> aiosqlite.Connection:
    """A connection in autocommit mode: every transaction is an explicit ``BEGIN``.

    Python's implicit transactions would start a deferred transaction on the first write, which
    can fail with "database is locked" when it has to upgrade; explicit ``BEGIN IMMEDIATE`` cannot.
    """
    mode = synchronous.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_s)
    except (OSError, sqlite3.DatabaseError) as error:
        raise StorageError(f"cannot open the database {path} ({error}): {_PERMISSIONS}") from None
    try:
        await check_intact(connection, path)
        connection.row_factory = sqlite3.Row
        await connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000):d}")
        journal = await retry_busy(lambda: _pragma(connection, "PRAGMA journal_mode = WAL"))
        if str(journal).lower() != "wal":
            raise StorageError(f"{path} cannot use WAL (journal mode {journal!r}); is it on NFS?")
        await connection.execute(f"PRAGMA synchronous = {mode}")
        await connection.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        await connection.close()
        raise
    return connection


_PERMISSIONS = "check that the data folder exists and that this user may write to it."


async def check_intact(connection: aiosqlite.Connection, path: Path) -> None:
    """Refuse a damaged or unwritable file before anything is written to it.

    A corrupt page would otherwise let the bot start and then fail every melody; a corrupt
    header or a truncated file would end in a traceback. ``PRAGMA quick_check`` reads every page
    once (milliseconds for this bot's databases).
    """
    restore = (
        f"Stop every bot using it, move it aside and copy your latest backup (made with "
        f"`melodybot backup PATH`) to {path}; without a backup, move it aside and start afresh."
    )
    try:
        async with connection.execute("PRAGMA quick_check") as cursor:
            problems = [row[0] for row in await cursor.fetchall()]
    except sqlite3.DatabaseError as error:
        raise DatabaseDamaged(f"the database {path} is damaged ({error}). {restore}") from None
    try:  # can we write here at all? (another process holding the lock is waited for)
        await begin_immediate(connection)
        await connection.execute("ROLLBACK")
    except sqlite3.DatabaseError as error:
        if is_busy(error):
            raise
        if isinstance(error, sqlite3.OperationalError) and "malformed" not in str(error):
            problem = f"cannot write the database {path} ({error}): {_PERMISSIONS}"
            raise StorageError(problem) from None
        raise DatabaseDamaged(f"the database {path} is damaged ({error}). {restore}") from None
    if problems != ["ok"]:
        first = " ".join(problems[0].split())  # quick_check's first finding, on one line
        raise DatabaseDamaged(f"the database {path} is damaged ({first}). {restore}")


async def _pragma(connection: aiosqlite.Connection, sql: str) -> object:
    async with connection.execute(sql) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def schema_version(connection: aiosqlite.Connection) -> int:
    return int(await _pragma(connection, "PRAGMA user_version"))  # type: ignore[arg-type]


async def begin_immediate(connection: aiosqlite.Connection) -> None:
    """Take the write lock up front, so a read-check-write step cannot be overtaken."""
    await retry_busy(lambda: connection.execute("BEGIN IMMEDIATE"))


async def migrate(connection: aiosqlite.Connection, target: int | None = None) -> int:
    """Apply every migration above the file's version (up to ``target``); a no-op when current.

    Each migration is one ``BEGIN IMMEDIATE`` transaction that re-reads the version under the
    write lock, so two processes starting at once never apply the same migration twice, and a
    crash mid-migration leaves the file at the previous version rather than half-changed.
    """
    latest = latest_version()
    target = latest if target is None else target
    if not 0 <= target <= latest:
        raise ValueError(f"target version {target} outside 0..{latest}")
    current = await schema_version(connection)
    if current > latest:
        raise SchemaTooNew(f"database is at schema {current}, this code knows up to {latest}")
    for migration in migrations():
        if migration.version > target:
            break
        if migration.version <= current:
            continue
        await begin_immediate(connection)
        try:
            if await schema_version(connection) >= migration.version:
                await connection.execute("ROLLBACK")
                continue
            for statement in split_statements(migration.sql):
                await connection.execute(statement)
            async with connection.execute("PRAGMA foreign_key_check") as cursor:
                broken = await cursor.fetchall()
            if broken:
                raise StorageError(f"migration {migration.version} broke foreign keys: {broken}")
            await connection.execute(f"PRAGMA user_version = {migration.version:d}")
            await connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                await connection.execute("ROLLBACK")
            raise
        log.info("database migrated to schema %d (%s)", migration.version, migration.name)
    return await schema_version(connection)


def split_statements(sql: str) -> list[str]:
    """A migration file as single statements; ``executescript`` would commit our transaction.

    ``sqlite3.complete_statement`` knows that a trigger's inner semicolons do not end it.
    """
    statements: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        if not current.strip() and line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise StorageError(f"unterminated SQL statement in migration: {current.strip()[:80]!r}")
    return statements


def backup(
    source: str | Path, destination: str | Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> Path:
    """A consistent copy of a live database, safe while the bots keep writing.

    SQLite's backup API copies in one step, which is one read transaction: under WAL the writers
    carry on and the copy is the database as of one commit. The copy is written beside the
    destination, checked, synced and renamed into place, so a crash never leaves a half-written
    file under the destination's name. The copy is a single file (rollback journal, not WAL).
    """
    source, destination = Path(source), Path(destination)
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    if destination.exists() and destination.resolve() == source.resolve():
        raise ValueError("cannot back a database up onto itself")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=busy_timeout_s)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
            (check,) = dst.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise StorageError(f"backup failed its integrity check: {check}")
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    _fsync(partial)
    os.replace(partial, destination)
    _fsync(destination.parent)
    return destination


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
