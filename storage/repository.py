"""The bot's memory: one async repository over one SQLite file shared by every front-end process.

Every read-check-write step is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write
lock before the first read: a quota check and the row it allows are one atomic step, across tasks
in one process and across the Discord and Telegram processes alike. Within a process an
``asyncio.Lock`` keeps steps from interleaving on the one connection (one aiosqlite connection is
one thread, and a transaction belongs to the connection, not to the task that began it).

User text is only ever a bound parameter, capped in length rather than refused. Every method that
depends on the time takes ``now`` (Unix seconds) so tests never sleep; by default it asks the
clock given to :meth:`Repository.open`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage import db, postgres
from storage.pages import PagesMixin, new_page_id
from storage.records import (
    GLOBAL,
    AlreadyReceived,
    AuditEntry,
    Ban,
    Banned,
    ChatDisabled,
    CooldownActive,
    Limits,
    MelodyRecord,
    QuotaExceeded,
    Stats,
    TooLong,
    TooManySeedNotes,
    User,
    check_limit,
)
from storage.text import (
    MAX_ERROR_CHARS,
    MAX_ID_CHARS,
    MAX_REASON_CHARS,
    MAX_REQUEST_CHARS,
    cap,
    cap_name,
    encodable,
)

log = logging.getLogger(__name__)

DAY_S = 86_400.0
QUOTA_WINDOW_S = DAY_S  # the daily quota is a rolling 24 hours, so there is no midnight rush
USAGE_KEPT_S = 2 * DAY_S  # quota rows outlive the window a little, for clock skew between hosts
MAX_PAGE = 1000
IDLE_CHECK_S = 5.0  # a PostgreSQL connection unused this long is checked before its next step
_INT64 = range(-(2**63), 2**63)

Clock = Callable[[], float]
Record = TypeVar("Record", User, MelodyRecord, Ban, AuditEntry)


INBOX_MAX_AGE_S = 86_400.0
ABANDONED = "abandoned: the bot stopped before the melody was finished"  # why such a melody failed
# A melody a process took on and has not yet handed to its platform (what a killed one leaves).
_UNSENT = "owner IS NOT NULL AND delivered_at IS NULL AND status <> 'failed'"


def _columns(record: type) -> str:
    """The SELECT list for a record type, so a column added by a migration never breaks one."""
    return ", ".join(f.name for f in fields(record))


def _record(record: type[Record], row: sqlite3.Row) -> Record:
    return record(**{f.name: row[f.name] for f in fields(record)})


def _scope(platform: str, chat_id: str) -> tuple[str, str]:
    """A (platform, chat) scope as stored; a chat without a platform means nothing."""
    platform, chat_id = cap(platform, MAX_ID_CHARS), cap(chat_id, MAX_ID_CHARS)
    if platform == GLOBAL and chat_id != GLOBAL:
        raise ValueError("a chat scope needs its platform")
    return platform, chat_id


def _user_id(user: User | int) -> int:
    return user.id if isinstance(user, User) else int(user)


def _user_label(user: User) -> str:
    """How the audit log names a user: the name moderators know plus the id that never changes."""
    return cap(f"{user.display_name} ({user.platform_user_id})", 2 * MAX_ID_CHARS)


def _ban_label(ban: Ban) -> str:
    until = (
        "permanent"
        if ban.expires_at is None
        else time.strftime("until %Y-%m-%d %H:%M UTC", time.gmtime(ban.expires_at))
    )
    return f"banned {until}: {ban.reason}" if ban.reason else f"banned {until}"


_SCOPE_CHAIN = """(platform = '' AND chat_id = '') OR (platform = :platform AND chat_id = '')
                  OR (platform = :platform AND chat_id = :chat_id)"""


class Repository(PagesMixin):
    """Users, melodies, limits, bans and the audit log of one SQLite file.

    Open it with :meth:`open` (``async with await Repository.open(path) as repo``). One instance
    per process is plenty; several are safe too, in one process or many.
    """

    def __init__(
        self,
        connection: aiosqlite.Connection | postgres.PostgresConnection,
        location: Path | str,
        defaults: Limits,
        clock: Clock,
    ):
        self._db = connection
        self.engine = "postgresql" if isinstance(location, str) else "sqlite"
        # The SQLite file (None on PostgreSQL), and where the data lives as an operator reads it.
        self.path = location if isinstance(location, Path) else None
        self.location = str(location) if self.path else postgres.redacted(str(location))
        self._url = None if self.path else str(location)
        self._owner: str | None = None
        self._last_used = time.monotonic()
        self.defaults = defaults
        self._clock = clock
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        target: str | Path,
        *,
        defaults: Limits | None = None,
        clock: Clock = time.time,
        busy_timeout_s: float = db.BUSY_TIMEOUT_S,
        synchronous: str = "FULL",
    ) -> Repository:
        """Connect and migrate; ``defaults`` are the bot settings' limits, below any DB row.

        ``target`` is a SQLite file, or a ``postgresql://`` URL (see :mod:`storage.postgres`).
        """
        location: Path | str
        connection: aiosqlite.Connection | postgres.PostgresConnection
        if postgres.is_postgres_url(target):
            location = str(target)
            connection = await postgres.PostgresConnection.connect(location)
            migrate = postgres.migrate
        else:
            location = Path(target)
            connection = await db.connect(
                location, busy_timeout_s=busy_timeout_s, synchronous=synchronous
            )
            migrate = db.migrate  # type: ignore[assignment]
        try:
            await migrate(connection)  # type: ignore[arg-type]
        except BaseException:
            await connection.close()
            raise
        return cls(connection, location, defaults or Limits(), clock)

    async def close(self) -> None:
        """Wait for the step in progress, then close; closing twice is harmless."""
        async with self._lock:
            if not self._closed:
                self._closed = True
                await self._db.close()

    async def __aenter__(self) -> Repository:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # plumbing ------------------------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else float(now)

    @asynccontextmanager
    async def _step(self) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection for one read or one transaction."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("the repository is closed")
            if isinstance(self._db, postgres.PostgresConnection) and not await self._usable():
                await self._reconnect()
            if self._db.in_transaction:  # left open by a step cancelled mid-way
                log.warning("rolling back a transaction a cancelled step left open")
                await self._rollback()
            try:
                yield self._db
            finally:
                self._last_used = time.monotonic()

    async def _usable(self) -> bool:
        """Whether the PostgreSQL connection still works: known broken, or idle long enough for
        the server to have restarted since (then one ``SELECT 1`` asks), it is replaced before
        the step, so a restart while the bot is quiet costs no user's request."""
        assert isinstance(self._db, postgres.PostgresConnection)
        if self._db.broken:
            return False
        if time.monotonic() - self._last_used < IDLE_CHECK_S:
            return True
        try:
            await self._db.execute("SELECT 1")
        except Exception:
            return False
        return True

    async def _reconnect(self) -> None:
        """A new connection after the server restarted or the network dropped the old one: the
        step that found it broken runs on the new one, the one that broke it failed alone."""
        log.warning("the connection to %s was lost; connecting again", self.location)
        assert self._url is not None
        self._db = await postgres.PostgresConnection.connect(self._url)
        if self._owner is not None:
            await postgres.hold_owner(self._db, self._owner)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed if the block returns, else rolled back.

        If the caller is cancelled while COMMIT is on its way, SQLite may still commit; the
        rollback that follows then finds nothing to undo. Either way the connection is left
        outside any transaction for the next step.
        """
        async with self._step() as connection:
            try:
                if isinstance(connection, postgres.PostgresConnection):
                    await postgres.begin_write(connection)
                else:
                    await db.begin_immediate(connection)
                yield connection
                await connection.execute("COMMIT")
            except BaseException as error:
                await self._rollback()
                if db.is_full(error) or postgres.is_full(error):
                    raise db.StorageFull(f"the disk holding {self.location} is full") from error
                raise

    async def _rollback(self) -> None:
        """Roll back even when the caller is being cancelled: the ROLLBACK is queued at once on
        the connection's thread, ahead of any later step, and runs to completion."""
        task = asyncio.ensure_future(self._quiet_rollback())
        await asyncio.shield(task)

    async def _quiet_rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except Exception as error:  # nothing was open (COMMIT got there first), or the link died
            log.debug("rollback not needed: %s", error)

    async def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        async with self._step() as connection:
            rows = await db.retry_busy(lambda: connection.execute_fetchall(sql, params))
        return list(rows)

    @staticmethod
    async def _fetchall(
        connection: aiosqlite.Connection, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[Any]:
        return list(await connection.execute_fetchall(sql, params))

    @staticmethod
    async def _fetchone(
        connection: aiosqlite.Connection, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> Any:
        cursor = await connection.execute(sql, params)
        try:
            return await cursor.fetchone()
        finally:
            await cursor.close()

    async def _audit(
        self,
        connection: aiosqlite.Connection,
        scope: tuple[str, str],
        actor: str,
        action: str,
        target: str,
        old: str | None,
        new: str | None,
        now: float,
    ) -> None:
        """Written inside the admin action's own transaction: no change without its record."""
        await connection.execute(
            """INSERT INTO audit_log (platform, chat_id, actor, action, target, old_value,
                                      new_value, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (*scope, cap_name(actor), action, target, old, new, now),
        )

    # users ---------------------------------------------------------------------------------

    async def upsert_user(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str,
        *,
        now: float | None = None,
    ) -> User:
        """Record that someone turned up, keeping their latest name; returns their record."""
        platform = cap(platform, MAX_ID_CHARS)
        if not platform:
            raise ValueError("a user needs a platform")
        now = self._now(now)
        async with self._write() as connection:
            row = await self._fetchone(
                connection,
                f"""INSERT INTO users (platform, platform_user_id, display_name, first_seen,
                                       last_seen)
                    VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (platform, platform_user_id) DO UPDATE
                    SET display_name = excluded.display_name,
                        last_seen = CASE WHEN excluded.last_seen > users.last_seen
                                         THEN excluded.last_seen ELSE users.last_seen END
                    RETURNING {_columns(User)}""",
                (platform, cap(platform_user_id, MAX_ID_CHARS), cap_name(display_name), now, now),
            )
        return _record(User, row)

    async def get_user(self, user_id: int) -> User | None:
        rows = await self._read(f"SELECT {_columns(User)} FROM users WHERE id = ?", (user_id,))
        return _record(User, rows[0]) if rows else None

    async def find_user(self, platform: str, name_or_id: str) -> User | None:
        """Someone on this platform by id, else by display name (any case, most recently seen);
        how moderators point at a user they cannot mention."""
        needle = cap(name_or_id.strip().lstrip("@"), MAX_ID_CHARS)
        rows = await self._read(
            f"""SELECT {_columns(User)} FROM users
                WHERE platform = ? AND (platform_user_id = ? OR lower(display_name) = lower(?))
                ORDER BY platform_user_id = ? DESC, last_seen DESC LIMIT 1""",
            (cap(platform, MAX_ID_CHARS), needle, needle, needle),
        )
        return _record(User, rows[0]) if rows else None

    # limits --------------------------------------------------------------------------------

    async def effective_limits(self, platform: str, chat_id: str) -> Limits:
        """Code defaults, then global rows, then platform rows, then the chat's own rows."""
        async with self._step() as connection:
            return await self._limits(connection, _scope(platform, chat_id))

    async def _limits(self, connection: aiosqlite.Connection, scope: tuple[str, str]) -> Limits:
        rows = await self._fetchall(
            connection,
            f"""SELECT name, value FROM limits WHERE {_SCOPE_CHAIN}
                ORDER BY CASE WHEN platform = '' THEN 0 WHEN chat_id = '' THEN 1 ELSE 2 END""",
            {"platform": scope[0], "chat_id": scope[1]},
        )
        limits = self.defaults
        for name, value in rows:  # least specific first: the chat's word is the last word
            try:
                limits = limits.with_value(name, value)
            except ValueError as error:  # a row written by hand must not take the bot down
                log.warning("ignoring limit row %s=%r in %s: %s", name, value, scope, error)
        return limits

    async def set_limit(
        self,
        platform: str,
        chat_id: str,
        name: str,
        value: int,
        actor: str,
        *,
        now: float | None = None,
    ) -> int | None:
        """Override one limit in a scope (``GLOBAL`` for everywhere); returns the old override.

        The audit row with old → new is written in the same transaction as the change.
        """
        return await self._change_limit(platform, chat_id, name, value, actor, now)

    async def unset_limit(
        self, platform: str, chat_id: str, name: str, actor: str, *, now: float | None = None
    ) -> int | None:
        """Drop a scope's override so the wider default applies again; returns what it was."""
        return await self._change_limit(platform, chat_id, name, None, actor, now)

    async def set_enabled(
        self, platform: str, chat_id: str, enabled: bool, actor: str, *, now: float | None = None
    ) -> bool | None:
        """Switch the bot on or off in a scope; returns the scope's previous switch, if any."""
        old = await self.set_limit(platform, chat_id, "enabled", int(enabled), actor, now=now)
        return None if old is None else bool(old)

    async def _change_limit(
        self,
        platform: str,
        chat_id: str,
        name: str,
        value: int | None,
        actor: str,
        now: float | None,
    ) -> int | None:
        """Set (or with ``None`` drop) one override, and audit it in the same transaction."""
        check_limit(name, 0 if value is None else value)
        scope = _scope(platform, chat_id)
        now = self._now(now)
        key = (*scope, name)
        async with self._write() as connection:
            row = await self._fetchone(
                connection,
                "SELECT value FROM limits WHERE platform = ? AND chat_id = ? AND name = ?",
                key,
            )
            old = None if row is None else int(row[0])
            if value is None:
                if old is None:
                    return None
                await connection.execute(
                    "DELETE FROM limits WHERE platform = ? AND chat_id = ? AND name = ?", key
                )
            else:
                await connection.execute(
                    """INSERT INTO limits (platform, chat_id, name, value, updated_at, updated_by)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT (platform, chat_id, name) DO UPDATE
                       SET value = excluded.value, updated_at = excluded.updated_at,
                           updated_by = excluded.updated_by""",
                    (*key, int(value), now, cap_name(actor)),
                )
            await self._audit(
                connection,
                scope,
                actor,
                f"unset {name}" if value is None else f"set {name}",
                "",
                None if old is None else str(old),
                None if value is None else str(int(value)),
                now,
            )
        return old

    # melodies ------------------------------------------------------------------------------

    async def reserve_melody(
        self,
        user: User | int,
        platform: str,
        chat_id: str,
        request_text: str,
        parsed_request: dict[str, Any],
        model_name: str,
        model_version: str,
        rng_seed: int,
        *,
        owner: str | None = None,
        reply_address: str | None = None,
        source: str | None = None,
        bars: float | None = None,
        seed_notes: int | None = None,
        now: float | None = None,
    ) -> int:
        """Check ban, on/off switch, the chat's size limits (``bars`` long, ``seed_notes``
        starting notes), daily quota and cooldown, and record a pending melody: one atomic step,
        whatever else runs in this process or another.

        ``owner`` names the process composing it and ``reply_address`` where the reply goes, so
        that if the process dies another one can take the melody over (:meth:`take_over`).
        ``source`` is the platform's id of the message: the same message twice raises
        :class:`~storage.records.AlreadyReceived` and records nothing.

        Returns the new melody's id, or raises a :class:`~storage.records.Refusal` (``Banned``,
        ``ChatDisabled``, ``TooLong``, ``TooManySeedNotes``, ``QuotaExceeded``,
        ``CooldownActive``) and records nothing. Quota and
        cooldown count this user's accepted requests in this chat over a rolling day; failed
        melodies give their slot back. Deleting history does not: the count lives in ``usage``.
        """
        user_id = _user_id(user)
        scope = _scope(platform, chat_id)
        if int(rng_seed) not in _INT64:
            raise ValueError(f"rng_seed {rng_seed} does not fit in 64 bits")
        request_json = encodable(
            json.dumps(parsed_request, sort_keys=True, ensure_ascii=False, default=str)
        )
        now = self._now(now)
        async with self._write() as connection:
            if source is not None and await self._fetchone(
                connection, "SELECT 1 FROM generations WHERE source = ?", (source,)
            ):
                raise AlreadyReceived(source)
            await self._admit(connection, user_id, scope, now, quota=True, size=(bars, seed_notes))
            row = await self._fetchone(
                connection,
                """INSERT INTO generations (user_id, platform, chat_id, request_text, request_json,
                       model_name, model_version, rng_seed, status, created_at, owner,
                       reply_address, source, page_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?) RETURNING id""",
                (
                    user_id,
                    *scope,
                    cap(request_text, MAX_REQUEST_CHARS),
                    request_json,
                    cap(model_name, MAX_ID_CHARS),
                    cap(model_version, MAX_ID_CHARS),
                    int(rng_seed),
                    now,
                    None if owner is None else cap(owner, MAX_ID_CHARS),
                    None if reply_address is None else cap(reply_address, MAX_ID_CHARS),
                    None if source is None else cap(source, MAX_ID_CHARS),
                    new_page_id(),
                ),
            )
            melody_id = int(row[0])
            await connection.execute(
                """INSERT INTO usage (user_id, platform, chat_id, created_at, generation_id)
                   VALUES (?, ?, ?, ?, ?)""",
                (user_id, *scope, now, melody_id),
            )
        return melody_id

    async def _admit(
        self,
        connection: aiosqlite.Connection,
        user_id: int,
        scope: tuple[str, str],
        now: float,
        *,
        quota: bool,
        size: tuple[float | None, int | None] = (None, None),
    ) -> None:
        """Inside the caller's write transaction: a ban, a switched-off chat, the size limits
        (bars, starting notes), the quota (if it applies) and the cooldown, each raised as its
        Refusal."""
        ban = await self._active_ban(connection, user_id, scope, now)
        if ban is not None:
            raise Banned(ban)
        limits = await self._limits(connection, scope)
        if not limits.enabled:
            raise ChatDisabled(*scope)
        bars, seed_notes = size
        if bars is not None and bars > limits.max_bars:
            raise TooLong(limits.max_bars)
        if seed_notes is not None and seed_notes > limits.max_seed_notes:
            raise TooManySeedNotes(limits.max_seed_notes)
        await self._check_rate(connection, user_id, scope, limits, now, quota=quota)

    async def _check_rate(
        self,
        connection: aiosqlite.Connection,
        user_id: int,
        scope: tuple[str, str],
        limits: Limits,
        now: float,
        *,
        quota: bool = True,
    ) -> None:
        """Quota before cooldown: "come back tomorrow" beats "wait 10 s" and then a refusal.
        Without ``quota`` only the cooldown is checked (re-sending composes nothing)."""
        window_start = now - QUOTA_WINDOW_S
        where = """user_id = ? AND platform = ? AND chat_id = ? AND counts = 1
                   AND created_at > ?"""
        count, newest = await self._fetchone(
            connection,
            f"""SELECT coalesce(sum(CASE WHEN created_at > ? AND kind = 'compose' THEN 1 ELSE 0
                                        END), 0), max(created_at)
                FROM usage WHERE {where}""",
            (window_start, user_id, *scope, min(window_start, now - limits.cooldown_s)),
        )
        if quota and count >= limits.daily_quota:
            # The slot that frees first is the oldest one that keeps the count at the quota.
            row = await self._fetchone(
                connection,
                f"""SELECT created_at FROM usage WHERE {where} AND kind = 'compose'
                ORDER BY created_at LIMIT 1 OFFSET ?""",
                (user_id, *scope, window_start, count - limits.daily_quota),
            )
            resets_at = (now if row is None else row[0]) + QUOTA_WINDOW_S
            raise QuotaExceeded(limits.daily_quota, resets_at)
        if newest is not None and limits.cooldown_s > 0:
            elapsed = max(0.0, now - newest)  # another host's clock may run ahead
            if elapsed < limits.cooldown_s:
                raise CooldownActive(limits.cooldown_s - elapsed)

    async def complete_melody(
        self,
        melody_id: int,
        midi: bytes,
        melody_key: str | None = None,
        steps: int | None = None,
        *,
        tokens: str | None = None,
        pickup: int | None = None,
        now: float | None = None,
    ) -> bool:
        """Store the finished melody; False if it is gone (forgotten) or no longer pending.

        ``tokens`` and ``pickup`` let it be drawn and played again without its model."""
        now = self._now(now)
        async with self._write() as connection:
            cursor = await connection.execute(
                """UPDATE generations SET status = 'done', midi = ?, melody_key = ?, steps = ?,
                          tokens = ?, pickup = ?, completed_at = ?, error = NULL
                   WHERE id = ? AND status = 'pending'""",
                (
                    bytes(midi),
                    None if melody_key is None else cap(melody_key, MAX_ID_CHARS),
                    None if steps is None else int(steps),
                    tokens,
                    None if pickup is None else int(pickup),
                    now,
                    melody_id,
                ),
            )
            return cursor.rowcount > 0

    async def admit_resend(
        self, user: User | int, platform: str, chat_id: str, *, now: float | None = None
    ) -> None:
        """Let a user have a stored melody sent again, or raise a Refusal: bans and a switched-off
        chat apply as to composing, and so does the cooldown (a re-send counts towards it, not
        towards the daily quota, since nothing is composed)."""
        user_id = _user_id(user)
        scope = _scope(platform, chat_id)
        now = self._now(now)
        async with self._write() as connection:
            await self._admit(connection, user_id, scope, now, quota=False)
            await connection.execute(
                """INSERT INTO usage (user_id, platform, chat_id, created_at, kind)
                   VALUES (?, ?, ?, ?, 'resend')""",
                (user_id, *scope, now),
            )

    async def fail_melody(self, melody_id: int, error: str, *, now: float | None = None) -> bool:
        """Record why a melody failed and give its quota slot back."""
        failed = await self._fail(
            "id = ? AND status = 'pending'", (melody_id,), error, self._now(now)
        )
        return failed > 0

    async def release_undelivered(
        self, melody_id: int, error: str, *, now: float | None = None
    ) -> bool:
        """A finished melody the platform would not deliver: mark it failed and give its quota
        slot back (the user never got it)."""
        released = await self._fail(
            "id = ? AND status = 'done'", (melody_id,), error, self._now(now)
        )
        return released > 0

    async def fail_stale_pending(
        self, older_than_s: float = 3600.0, *, now: float | None = None
    ) -> int:
        """Mark melodies a stopped process never finished as failed; run it at start-up.

        A process killed mid-melody leaves its row pending forever, holding a quota slot and
        looking in-flight to retention; this lets the slot go after ``older_than_s``.
        """
        now = self._now(now)
        return await self._fail(
            "status = 'pending' AND created_at < ?",
            (now - older_than_s,),
            ABANDONED,
            now,
        )

    async def inbox_add(
        self, platform: str, update_id: int, payload: str, *, now: float | None = None
    ) -> None:
        """Keep an update the platform handed over until :meth:`inbox_done` (seen twice: once)."""
        async with self._write() as connection:
            await connection.execute(
                """INSERT INTO inbox (platform, update_id, payload, received_at)
                   VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                (platform, int(update_id), payload, self._now(now)),
            )

    async def inbox_done(self, platform: str, update_id: int) -> None:
        async with self._write() as connection:
            await connection.execute(
                "DELETE FROM inbox WHERE platform = ? AND update_id = ?", (platform, update_id)
            )

    async def inbox(
        self, platform: str, *, max_age_s: float = INBOX_MAX_AGE_S, now: float | None = None
    ) -> list[tuple[int, str]]:
        """Updates not finished with, oldest first: (update id, payload). Those older than
        ``max_age_s`` are dropped: an answer a day late helps nobody."""
        async with self._write() as connection:
            await connection.execute(
                "DELETE FROM inbox WHERE platform = ? AND received_at < ?",
                (platform, self._now(now) - max_age_s),
            )
            rows = await self._fetchall(
                connection,
                "SELECT update_id, payload FROM inbox WHERE platform = ? ORDER BY update_id",
                (platform,),
            )
        return [(int(r[0]), r[1]) for r in rows]

    async def mark_delivered(self, melody_id: int, *, now: float | None = None) -> None:
        """The platform took the melody's reply: nothing is left for another process to send."""
        async with self._write() as connection:
            await connection.execute(
                "UPDATE generations SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
                (self._now(now), melody_id),
            )

    async def unsent_owners(self, platform: str) -> set[str]:
        """The processes that hold melodies on a platform not yet sent: pending, or finished
        but not taken by the platform."""
        rows = await self._read(
            f"SELECT DISTINCT owner FROM generations WHERE {_UNSENT} AND platform = ?",
            (platform,),
        )
        return {row[0] for row in rows}

    async def hold_owner(self, owner: str) -> None:
        """Let every process sharing the database see that ``owner`` (this process) is alive,
        for as long as this repository is open. On PostgreSQL it is a lock held by this
        connection, which the server lets go the moment the process or its machine dies; on
        SQLite the processes share a machine, and their scratch locks tell (:mod:`bot.scratch`)."""
        self._owner = owner
        if isinstance(self._db, postgres.PostgresConnection):
            async with self._step() as connection:
                await postgres.hold_owner(connection, owner)  # type: ignore[arg-type]

    async def owner_alive(self, owner: str) -> bool | None:
        """Whether the process ``owner`` still runs, or None where the database cannot tell."""
        if not isinstance(self._db, postgres.PostgresConnection):
            return None
        if owner == self._owner:
            return True
        async with self._step() as connection:
            return await postgres.owner_alive(connection, owner)  # type: ignore[arg-type]

    async def take_over(self, platform: str, dead_owner: str, new_owner: str) -> list[MelodyRecord]:
        """Make ``new_owner`` the owner of a dead process's unsent melodies on a platform and
        return them, oldest first. One atomic step: two processes taking over at once never
        both get the same melody."""
        async with self._write() as connection:
            rows = await self._fetchall(
                connection,
                f"""UPDATE generations SET owner = ?
                    WHERE {_UNSENT} AND platform = ? AND owner = ?
                    RETURNING {_columns(MelodyRecord)}""",
                (cap(new_owner, MAX_ID_CHARS), platform, dead_owner),
            )
        return sorted((_record(MelodyRecord, row) for row in rows), key=lambda g: g.id)

    async def _fail(self, where: str, params: tuple[Any, ...], error: str, now: float) -> int:
        async with self._write() as connection:
            rows = await self._fetchall(
                connection,
                f"""UPDATE generations SET status = 'failed', error = ?, completed_at = ?
                    WHERE {where} RETURNING id""",
                (cap(error, MAX_ERROR_CHARS), now, *params),
            )
            await connection.executemany(
                "UPDATE usage SET counts = 0 WHERE generation_id = ?", [(r[0],) for r in rows]
            )
        return len(rows)

    async def get_melody(self, melody_id: int) -> MelodyRecord | None:
        rows = await self._read(
            f"SELECT {_columns(MelodyRecord)} FROM generations WHERE id = ?", (melody_id,)
        )
        return _record(MelodyRecord, rows[0]) if rows else None

    async def history(
        self, user: User | int, limit: int = 5, offset: int = 0
    ) -> list[MelodyRecord]:
        """A user's finished melodies, newest first, one page at a time."""
        rows = await self._read(
            f"""SELECT {_columns(MelodyRecord)} FROM generations
                WHERE user_id = ? AND status = 'done'
                ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?""",
            (_user_id(user), min(max(0, limit), MAX_PAGE), max(0, offset)),
        )
        return [_record(MelodyRecord, r) for r in rows]

    async def count_history(self, user: User | int) -> int:
        rows = await self._read(
            "SELECT count(*) FROM generations WHERE user_id = ? AND status = 'done'",
            (_user_id(user),),
        )
        return int(rows[0][0])

    async def forget_user(self, user: User | int) -> int:
        """Delete every melody of a user ("forget me"); returns how many.

        Bans, the audit log and the content-free quota ledger stay: forgetting must not lift a
        ban or reset a quota. Melodies still being composed go too; their completion then
        finds nothing to store.
        """
        async with self._write() as connection:
            cursor = await connection.execute(
                "DELETE FROM generations WHERE user_id = ?", (_user_id(user),)
            )
            return cursor.rowcount

    async def apply_retention(
        self,
        keep_last: int | None = None,
        keep_days: float | None = None,
        *,
        now: float | None = None,
    ) -> int:
        """Delete finished melodies beyond each user's newest ``keep_last`` or older than
        ``keep_days``; pending ones are left to finish. Returns how many melodies went.

        Quota rows older than the quota window go too; they are all the ledger needs.
        """
        if keep_last is not None and keep_last < 0:
            raise ValueError("keep_last must be zero or more")
        if keep_days is not None and keep_days < 0:
            raise ValueError("keep_days must be zero or more")
        now = self._now(now)
        deleted = 0
        async with self._write() as connection:
            if keep_days is not None:
                cursor = await connection.execute(
                    "DELETE FROM generations WHERE status <> 'pending' AND created_at < ?",
                    (now - keep_days * DAY_S,),
                )
                deleted += cursor.rowcount
            if keep_last is not None:
                cursor = await connection.execute(
                    """DELETE FROM generations WHERE id IN (
                           SELECT id FROM (
                               SELECT id, status, row_number() OVER (
                                   PARTITION BY user_id ORDER BY created_at DESC, id DESC
                               ) AS newest
                               FROM generations WHERE status <> 'pending') AS ranked
                           WHERE newest > ?)""",
                    (keep_last,),
                )
                deleted += cursor.rowcount
            await connection.execute(
                "DELETE FROM usage WHERE created_at < ?", (now - USAGE_KEPT_S,)
            )
        return deleted

    # bans ----------------------------------------------------------------------------------

    async def ban(
        self,
        platform: str,
        chat_id: str,
        user: User,
        actor: str,
        reason: str = "",
        duration_s: float | None = None,
        *,
        now: float | None = None,
    ) -> Ban:
        """Bar a user from a scope (a chat, or ``GLOBAL`` for the whole platform), for good or
        for ``duration_s``. A ban already in force in the scope is the audit row's old value."""
        scope = _scope(platform, chat_id)
        if scope[0] not in (GLOBAL, user.platform):
            raise ValueError(f"a {user.platform} user cannot be banned on {scope[0]}")
        if duration_s is not None and not duration_s > 0:
            raise ValueError("a ban lasts a positive number of seconds, or for good (None)")
        now = self._now(now)
        expires_at = None if duration_s is None else now + duration_s
        async with self._write() as connection:
            before = await self._active_ban(connection, user.id, scope, now, exact=True)
            row = await self._fetchone(
                connection,
                f"""INSERT INTO bans (user_id, platform, chat_id, banned_by, reason, created_at,
                                      expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {_columns(Ban)}""",
                (
                    user.id,
                    *scope,
                    cap_name(actor),
                    cap(reason.strip(), MAX_REASON_CHARS),
                    now,
                    expires_at,
                ),
            )
            ban = _record(Ban, row)
            await self._audit(
                connection,
                scope,
                actor,
                "ban",
                _user_label(user),
                None if before is None else _ban_label(before),
                _ban_label(ban),
                now,
            )
        return ban

    async def unban(
        self, platform: str, chat_id: str, user: User, actor: str, *, now: float | None = None
    ) -> bool:
        """Lift the user's bans in exactly this scope; False if there was none in force.

        A chat's moderators cannot lift a platform-wide ban by unbanning in their chat.
        """
        scope = _scope(platform, chat_id)
        now = self._now(now)
        async with self._write() as connection:
            before = await self._active_ban(connection, user.id, scope, now, exact=True)
            if before is None:
                return False
            await connection.execute(
                """UPDATE bans SET lifted_at = ?, lifted_by = ?
                   WHERE user_id = ? AND platform = ? AND chat_id = ? AND lifted_at IS NULL
                     AND (expires_at IS NULL OR expires_at > ?)""",
                (now, cap_name(actor), user.id, *scope, now),
            )
            await self._audit(
                connection, scope, actor, "unban", _user_label(user), _ban_label(before), None, now
            )
        return True

    async def active_ban(
        self, platform: str, chat_id: str, user: User | int, *, now: float | None = None
    ) -> Ban | None:
        """The ban keeping a user out of a chat (its own, or its platform's), if any; expired
        and lifted bans do not count. The longest-lasting one wins."""
        async with self._step() as connection:
            return await self._active_ban(
                connection, _user_id(user), _scope(platform, chat_id), self._now(now)
            )

    @staticmethod
    async def _active_ban(
        connection: aiosqlite.Connection,
        user_id: int,
        scope: tuple[str, str],
        now: float,
        *,
        exact: bool = False,
    ) -> Ban | None:
        where = "platform = :platform AND chat_id = :chat_id" if exact else _SCOPE_CHAIN
        row = await Repository._fetchone(
            connection,
            f"""SELECT {_columns(Ban)} FROM bans
                WHERE user_id = :user_id AND ({where}) AND lifted_at IS NULL
                  AND (expires_at IS NULL OR expires_at > :now)
                ORDER BY expires_at IS NULL DESC, expires_at DESC, id DESC LIMIT 1""",
            {"user_id": user_id, "platform": scope[0], "chat_id": scope[1], "now": now},
        )
        return None if row is None else _record(Ban, row)

    # audit, statistics, backup -------------------------------------------------------------

    async def audit_log(
        self, platform: str, chat_id: str, limit: int = 10, offset: int = 0
    ) -> list[AuditEntry]:
        """Moderator actions in exactly this scope, newest first."""
        rows = await self._read(
            f"""SELECT {_columns(AuditEntry)} FROM audit_log WHERE platform = ? AND chat_id = ?
                ORDER BY id DESC LIMIT ? OFFSET ?""",
            (*_scope(platform, chat_id), min(max(0, limit), MAX_PAGE), max(0, offset)),
        )
        return [_record(AuditEntry, r) for r in rows]

    async def stats(
        self, platform: str, chat_id: str, days: int = 7, *, now: float | None = None
    ) -> Stats:
        """Finished melodies per UTC day and per user over the last ``days`` days; ``GLOBAL``
        as chat (or as both) counts the whole platform (or everything)."""
        platform, chat_id = _scope(platform, chat_id)
        params = {"platform": platform, "chat_id": chat_id, "since": self._now(now) - days * DAY_S}
        where = """(:platform = '' OR g.platform = :platform)
                   AND (:chat_id = '' OR g.chat_id = :chat_id)
                   AND g.status = 'done' AND g.created_at > :since"""
        per_day = await self._read(
            f"""SELECT {self._utc_day("g.created_at")} AS day, count(*) FROM generations g
                WHERE {where} GROUP BY day ORDER BY day DESC""",
            params,
        )
        per_user = await self._read(
            f"""SELECT u.display_name, count(*) AS n FROM generations g
                JOIN users u ON u.id = g.user_id
                WHERE {where} GROUP BY g.user_id, u.display_name
                ORDER BY n DESC, u.display_name LIMIT 20""",
            params,
        )
        return {
            "per_day": [(day, int(n)) for day, n in per_day],
            "per_user": [(name, int(n)) for name, n in per_user],
        }

    def _utc_day(self, column: str) -> str:
        """The UTC calendar day (YYYY-MM-DD) of a Unix time, in this engine's words."""
        if self.engine == "postgresql":
            return f"to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"date({column}, 'unixepoch')"

    async def backup(self, destination: str | Path) -> Path:
        """A consistent copy of the live file, made on a thread with its own connection so
        this repository keeps serving (see :func:`storage.db.backup`)."""
        if self.path is None:
            raise db.StorageError(
                f"{self.location} is PostgreSQL: back it up with pg_dump (or your host's backups)"
            )
        return await asyncio.to_thread(db.backup, self.path, Path(destination))
