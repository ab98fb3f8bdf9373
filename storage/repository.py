"""The bot's memory: one async repository over one SQLite file, shared by every front-end process.

Every read-check-write step runs in one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's
write lock up front: a quota check and the row it allows are one atomic step, across tasks in one
process and across the Discord and Telegram processes alike. All SQL is parameterised; user text
is only ever a bound value, capped in length rather than rejected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from storage import db
from storage.models import (
    GLOBAL,
    LIMIT_NAMES,
    AuditEntry,
    Ban,
    Banned,
    ChatDisabled,
    CooldownActive,
    Generation,
    Limits,
    QuotaExceeded,
    User,
)

MAX_NAME_CHARS = 100
MAX_REQUEST_CHARS = 1000
MAX_REASON_CHARS = 300
MAX_ERROR_CHARS = 500
DAY_S = 86_400.0

Clock = Callable[[], float]


def cap(text: str, limit: int) -> str:
    """Over-long text is shortened with an ellipsis, never refused."""
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Repository:
    def __init__(
        self, connection: aiosqlite.Connection, path: Path, defaults: Limits, clock: Clock
    ):
        self._db = connection
        self.path = path
        self.defaults = defaults
        self._clock = clock
        self._lock = asyncio.Lock()  # one transaction at a time on this connection

    @classmethod
    async def open(
        cls, path: str | Path, *, defaults: Limits | None = None, clock: Clock = time.time
    ) -> Repository:
        path = Path(path)
        connection = await db.connect(path)
        await db.migrate(connection)
        return cls(connection, path, defaults or Limits(), clock)

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def __aenter__(self) -> Repository:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _fetchone(self, sql: str, params: tuple = ()) -> aiosqlite.Row | None:
        async with self._lock, self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _fetchall(self, sql: str, params: tuple = ()) -> list[aiosqlite.Row]:
        async with self._lock, self._db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    # users ---------------------------------------------------------------------------------

    async def upsert_user(self, platform: str, platform_user_id: str, display_name: str) -> User:
        now = self._clock()
        async with (
            self._transaction() as conn,
            conn.execute(
                """INSERT INTO users (platform, platform_user_id, display_name, first_seen,
                                      last_seen)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (platform, platform_user_id)
                   DO UPDATE SET display_name = excluded.display_name,
                                 last_seen = excluded.last_seen
                   RETURNING *""",
                (
                    platform,
                    cap(platform_user_id, MAX_NAME_CHARS),
                    cap(display_name, MAX_NAME_CHARS) or "?",
                    now,
                    now,
                ),
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return User(**dict(row))

    async def find_user(self, platform: str, name_or_id: str) -> User | None:
        """A user of this platform by id, or by display name (case-insensitive, most recent)."""
        needle = name_or_id.strip().lstrip("@")
        row = await self._fetchone(
            """SELECT * FROM users WHERE platform = ?
               AND (platform_user_id = ? OR lower(display_name) = lower(?))
               ORDER BY platform_user_id = ? DESC, last_seen DESC LIMIT 1""",
            (platform, needle, needle, needle),
        )
        return User(**dict(row)) if row else None

    # limits --------------------------------------------------------------------------------

    async def effective_limits(self, platform: str, chat_id: str) -> Limits:
        rows = await self._fetchall(
            """SELECT platform, name, value FROM limits
               WHERE (platform = ? AND chat_id = ?) OR (platform = ? AND chat_id = ?)
               ORDER BY platform = ? ASC""",
            (GLOBAL, GLOBAL, platform, chat_id, platform),
        )
        return self._limits_from(rows)

    def _limits_from(self, rows: list[aiosqlite.Row]) -> Limits:
        limits = self.defaults
        for row in rows:  # global rows first, chat rows last: the chat's word wins
            limits = limits.with_value(row["name"], row["value"])
        return limits

    async def set_limit(
        self, platform: str, chat_id: str, name: str, value: int, actor: str
    ) -> int | None:
        """Set one limit for a chat (or globally with ``GLOBAL``); returns the old override."""
        if name not in LIMIT_NAMES:
            raise ValueError(f"unknown limit {name!r}; limits are {', '.join(LIMIT_NAMES)}")
        async with self._transaction() as conn:
            async with conn.execute(
                "SELECT value FROM limits WHERE platform = ? AND chat_id = ? AND name = ?",
                (platform, chat_id, name),
            ) as cursor:
                old = await cursor.fetchone()
            await conn.execute(
                """INSERT INTO limits (platform, chat_id, name, value) VALUES (?, ?, ?, ?)
                   ON CONFLICT (platform, chat_id, name) DO UPDATE SET value = excluded.value""",
                (platform, chat_id, name, int(value)),
            )
            await self._audit(
                conn,
                platform,
                chat_id,
                actor,
                f"set {name}",
                "",
                None if old is None else str(old[0]),
                str(int(value)),
            )
        return None if old is None else int(old[0])

    async def set_enabled(self, platform: str, chat_id: str, enabled: bool, actor: str) -> None:
        await self.set_limit(platform, chat_id, "enabled", int(enabled), actor)

    # melodies ------------------------------------------------------------------------------

    async def reserve_generation(
        self,
        user: User,
        platform: str,
        chat_id: str,
        request_text: str,
        request: dict,
        model_name: str,
        model_version: str,
        rng_seed: int,
    ) -> int:
        """Check ban, chat switch, daily quota and cooldown and record a pending melody, atomically.

        Raises a :class:`~storage.models.Refusal` instead of recording when the user may not
        compose now. Failed melodies do not count against the quota.
        """
        now = self._clock()
        async with self._transaction() as conn:
            ban = await self._active_ban(conn, platform, chat_id, user.id, now)
            if ban is not None:
                raise Banned(ban)
            async with conn.execute(
                """SELECT platform, name, value FROM limits
                   WHERE (platform = ? AND chat_id = ?) OR (platform = ? AND chat_id = ?)
                   ORDER BY platform = ? ASC""",
                (GLOBAL, GLOBAL, platform, chat_id, platform),
            ) as cursor:
                limits = self._limits_from(list(await cursor.fetchall()))
            if not limits.enabled:
                raise ChatDisabled()
            async with conn.execute(
                """SELECT count(*), min(created_at), max(created_at) FROM generations
                   WHERE user_id = ? AND status != 'failed' AND created_at > ?""",
                (user.id, now - DAY_S),
            ) as cursor:
                count, oldest, newest = await cursor.fetchone()
            if newest is not None and now - newest < limits.cooldown_s:
                raise CooldownActive(limits.cooldown_s - (now - newest))
            if count >= limits.daily_quota:
                raise QuotaExceeded(limits.daily_quota, (oldest or now) + DAY_S)
            async with conn.execute(
                """INSERT INTO generations (user_id, platform, chat_id, request_text, request_json,
                       model_name, model_version, rng_seed, status, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)""",
                (
                    user.id,
                    platform,
                    chat_id,
                    cap(request_text, MAX_REQUEST_CHARS),
                    json.dumps(request, sort_keys=True),
                    model_name,
                    model_version,
                    int(rng_seed),
                    now,
                ),
            ) as cursor:
                return int(cursor.lastrowid)

    async def complete_generation(
        self,
        generation_id: int,
        midi: bytes,
        melody_key: str | None = None,
        steps: int | None = None,
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                """UPDATE generations SET status = 'done', midi = ?, melody_key = ?, steps = ?,
                          completed_at = ?, error = NULL WHERE id = ?""",
                (midi, melody_key, steps, self._clock(), generation_id),
            )

    async def fail_generation(self, generation_id: int, error: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                """UPDATE generations SET status = 'failed', error = ?, completed_at = ?
                   WHERE id = ?""",
                (cap(error, MAX_ERROR_CHARS), self._clock(), generation_id),
            )

    async def get_generation(self, generation_id: int) -> Generation | None:
        row = await self._fetchone("SELECT * FROM generations WHERE id = ?", (generation_id,))
        return Generation(**dict(row)) if row else None

    async def history(self, user_id: int, limit: int = 5, offset: int = 0) -> list[Generation]:
        """A user's finished melodies, newest first."""
        rows = await self._fetchall(
            """SELECT * FROM generations WHERE user_id = ? AND status = 'done'
               ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?""",
            (user_id, max(0, limit), max(0, offset)),
        )
        return [Generation(**dict(r)) for r in rows]

    async def count_history(self, user_id: int) -> int:
        row = await self._fetchone(
            "SELECT count(*) FROM generations WHERE user_id = ? AND status = 'done'", (user_id,)
        )
        return int(row[0])

    async def forget_user(self, user_id: int) -> int:
        """Delete every melody of a user ("forget me"); bans and the audit log stay."""
        async with (
            self._transaction() as conn,
            conn.execute("DELETE FROM generations WHERE user_id = ?", (user_id,)) as cursor,
        ):
            return cursor.rowcount

    async def apply_retention(
        self, keep_last: int | None = None, keep_days: int | None = None
    ) -> int:
        """Drop melodies beyond the last ``keep_last`` per user or older than ``keep_days``."""
        deleted = 0
        async with self._transaction() as conn:
            if keep_days is not None:
                async with conn.execute(
                    "DELETE FROM generations WHERE created_at < ? AND status != 'pending'",
                    (self._clock() - keep_days * DAY_S,),
                ) as cursor:
                    deleted += cursor.rowcount
            if keep_last is not None:
                async with conn.execute(
                    """DELETE FROM generations WHERE id IN (
                           SELECT id FROM (
                               SELECT id, status, row_number() OVER (
                                   PARTITION BY user_id ORDER BY created_at DESC, id DESC) AS rank
                               FROM generations)
                           WHERE rank > ? AND status != 'pending')""",
                    (keep_last,),
                ) as cursor:
                    deleted += cursor.rowcount
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
    ) -> Ban:
        now = self._clock()
        expires = None if duration_s is None else now + duration_s
        async with self._transaction() as conn:
            async with conn.execute(
                """INSERT INTO bans (platform, chat_id, user_id, banned_by, reason, created_at,
                                     expires_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *""",
                (
                    platform,
                    chat_id,
                    user.id,
                    cap(actor, MAX_NAME_CHARS),
                    cap(reason, MAX_REASON_CHARS),
                    now,
                    expires,
                ),
            ) as cursor:
                row = dict(await cursor.fetchone())
            await self._audit(
                conn,
                platform,
                chat_id,
                actor,
                "ban",
                user.display_name,
                None,
                _ban_text(reason, expires),
            )
        return _ban_from(row)

    async def unban(self, platform: str, chat_id: str, user: User, actor: str) -> bool:
        now = self._clock()
        async with self._transaction() as conn:
            async with conn.execute(
                """UPDATE bans SET lifted_at = ?, lifted_by = ?
                   WHERE platform = ? AND chat_id IN (?, ?) AND user_id = ? AND lifted_at IS NULL
                     AND (expires_at IS NULL OR expires_at > ?)""",
                (now, cap(actor, MAX_NAME_CHARS), platform, chat_id, GLOBAL, user.id, now),
            ) as cursor:
                lifted = cursor.rowcount
            if lifted:
                await self._audit(
                    conn, platform, chat_id, actor, "unban", user.display_name, "banned", None
                )
        return lifted > 0

    async def active_ban(self, platform: str, chat_id: str, user_id: int) -> Ban | None:
        async with self._lock:
            return await self._active_ban(self._db, platform, chat_id, user_id, self._clock())

    @staticmethod
    async def _active_ban(conn, platform: str, chat_id: str, user_id: int, now: float):
        async with conn.execute(
            """SELECT * FROM bans WHERE platform = ? AND chat_id IN (?, ?) AND user_id = ?
                 AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
               ORDER BY expires_at IS NULL DESC, expires_at DESC LIMIT 1""",
            (platform, chat_id, GLOBAL, user_id, now),
        ) as cursor:
            row = await cursor.fetchone()
        return _ban_from(dict(row)) if row else None

    # audit and statistics ------------------------------------------------------------------

    async def _audit(self, conn, platform, chat_id, actor, action, target, old, new) -> None:
        await conn.execute(
            """INSERT INTO audit_log (platform, chat_id, actor, action, target, old_value,
                                      new_value, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                platform,
                chat_id,
                cap(actor, MAX_NAME_CHARS),
                action,
                cap(target, MAX_NAME_CHARS),
                old,
                new,
                self._clock(),
            ),
        )

    async def audit_log(self, platform: str, chat_id: str, limit: int = 10) -> list[AuditEntry]:
        rows = await self._fetchall(
            """SELECT * FROM audit_log WHERE platform = ? AND chat_id = ?
               ORDER BY id DESC LIMIT ?""",
            (platform, chat_id, max(0, limit)),
        )
        return [AuditEntry(**dict(r)) for r in rows]

    async def stats(self, platform: str, chat_id: str, days: int = 7) -> dict[str, list]:
        """Finished melodies per day and per user in one chat over the last ``days`` days."""
        since = self._clock() - days * DAY_S
        per_day = await self._fetchall(
            """SELECT date(created_at, 'unixepoch') AS day, count(*) AS n FROM generations
               WHERE platform = ? AND chat_id = ? AND status = 'done' AND created_at > ?
               GROUP BY day ORDER BY day DESC""",
            (platform, chat_id, since),
        )
        per_user = await self._fetchall(
            """SELECT u.display_name AS name, count(*) AS n FROM generations g
               JOIN users u ON u.id = g.user_id
               WHERE g.platform = ? AND g.chat_id = ? AND g.status = 'done' AND g.created_at > ?
               GROUP BY g.user_id ORDER BY n DESC, name LIMIT 20""",
            (platform, chat_id, since),
        )
        return {
            "per_day": [(r["day"], r["n"]) for r in per_day],
            "per_user": [(r["name"], r["n"]) for r in per_user],
        }

    async def backup(self, destination: str | Path) -> None:
        """A consistent copy of the live database (SQLite backup API), made off the event loop."""
        await asyncio.to_thread(db.backup, self.path, Path(destination))


def _ban_from(row: dict) -> Ban:
    return Ban(**{k: row[k] for k in Ban.__dataclass_fields__})


def _ban_text(reason: str, expires: float | None) -> str:
    until = (
        "permanent"
        if expires is None
        else time.strftime("until %Y-%m-%d %H:%M UTC", time.gmtime(expires))
    )
    return f"{until}; {cap(reason, MAX_REASON_CHARS)}" if reason else until
