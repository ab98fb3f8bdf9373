"""What the public web pages read and what moderators switch: a melody's page, a chat's gallery.

A page is found by its random ``page_id``, never by the melody's number, so nobody can walk
through the melodies. A deleted melody's page answers "gone" (its id stays in
``removed_pages``); so does one whose composer is banned in its chat. Mixed into
:class:`~storage.repository.Repository`, whose connection and helpers it uses.
"""

from __future__ import annotations

import secrets
from dataclasses import fields
from typing import TYPE_CHECKING, Literal

from storage.records import Gallery, MelodyRecord, PageEntry

if TYPE_CHECKING:
    import aiosqlite

GONE: Literal["gone"] = "gone"
PAGE_ID_BYTES = 12  # 96 random bits, 16 characters in a URL


def new_page_id() -> str:
    return secrets.token_urlsafe(PAGE_ID_BYTES)


_MELODY_COLUMNS = ", ".join(f"g.{f.name}" for f in fields(MelodyRecord))
# A ban in force on the melody's composer in its chat, its platform or everywhere.
_BANNED = """EXISTS (SELECT 1 FROM bans b WHERE b.user_id = g.user_id AND b.lifted_at IS NULL
                 AND (b.expires_at IS NULL OR b.expires_at > :now)
                 AND ((b.platform = '' AND b.chat_id = '')
                      OR (b.platform = g.platform AND b.chat_id = '')
                      OR (b.platform = g.platform AND b.chat_id = g.chat_id)))"""


def _melody(row) -> MelodyRecord:
    return MelodyRecord(**{f.name: row[f.name] for f in fields(MelodyRecord)})


class PagesMixin:
    async def melody_page(
        self, page_id: str, *, now: float | None = None
    ) -> PageEntry | Literal["gone"] | None:
        """The finished melody at ``page_id``, with its composer's name if the chat's gallery
        shows names; GONE if it was removed (deleted, failed, its composer banned there); None
        if there never was one (or it is still being composed)."""
        now = self._now(now)  # type: ignore[attr-defined]
        async with self._step() as connection:  # type: ignore[attr-defined]
            row = await self._fetchone(  # type: ignore[attr-defined]
                connection,
                f"""SELECT {_MELODY_COLUMNS}, u.display_name AS composer, {_BANNED} AS banned,
                           coalesce(s.enabled * s.show_names, 0) AS named
                    FROM generations g JOIN users u ON u.id = g.user_id
                    LEFT JOIN galleries s ON s.platform = g.platform AND s.chat_id = g.chat_id
                    WHERE g.page_id = :page_id""",
                {"page_id": page_id, "now": now},
            )
            if row is None:
                removed = await self._fetchone(  # type: ignore[attr-defined]
                    connection, "SELECT 1 FROM removed_pages WHERE page_id = ?", (page_id,)
                )
                return GONE if removed else None
        if row["status"] == "pending":
            return None
        if row["status"] == "failed" or row["banned"]:
            return GONE
        return PageEntry(_melody(row), row["composer"] if row["named"] else None)

    async def set_gallery(
        self,
        platform: str,
        chat_id: str,
        enabled: bool,
        actor: str,
        *,
        show_names: bool = False,
        now: float | None = None,
    ) -> Gallery:
        """Switch a chat's gallery on (with or without names) or off; audited. The address is
        made the first time and kept, so a link shared before works again once it is back."""
        now = self._now(now)  # type: ignore[attr-defined]
        scope = (platform, chat_id)
        async with self._write() as connection:  # type: ignore[attr-defined]
            before = await self._gallery_where(connection, "platform = ? AND chat_id = ?", scope)
            row = await self._fetchone(  # type: ignore[attr-defined]
                connection,
                """INSERT INTO galleries (platform, chat_id, page_id, enabled, show_names,
                                          changed_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (platform, chat_id) DO UPDATE SET enabled = excluded.enabled,
                       show_names = excluded.show_names, changed_at = excluded.changed_at
                   RETURNING platform, chat_id, page_id, enabled, show_names, changed_at""",
                (*scope, new_page_id(), int(enabled), int(enabled and show_names), now),
            )
            after = _gallery(row)
            await self._audit(  # type: ignore[attr-defined]
                connection,
                scope,
                actor,
                "set gallery",
                "",
                None if before is None else _gallery_state(before),
                _gallery_state(after),
                now,
            )
        return after

    async def chat_gallery(self, platform: str, chat_id: str) -> Gallery | None:
        async with self._step() as connection:  # type: ignore[attr-defined]
            return await self._gallery_where(
                connection, "platform = ? AND chat_id = ?", (platform, chat_id)
            )

    async def gallery(self, page_id: str) -> Gallery | None:
        async with self._step() as connection:  # type: ignore[attr-defined]
            return await self._gallery_where(connection, "page_id = ?", (page_id,))

    async def gallery_entries(
        self, gallery: Gallery, *, limit: int = 20, offset: int = 0, now: float | None = None
    ) -> list[PageEntry]:
        """A page of the chat's finished melodies, newest first, none of a banned composer."""
        now = self._now(now)  # type: ignore[attr-defined]
        async with self._step() as connection:  # type: ignore[attr-defined]
            rows = await self._fetchall(  # type: ignore[attr-defined]
                connection,
                f"""SELECT {_MELODY_COLUMNS}, u.display_name AS composer
                    FROM generations g JOIN users u ON u.id = g.user_id
                    WHERE g.platform = :platform AND g.chat_id = :chat_id
                      AND g.status = 'done' AND NOT {_BANNED}
                    ORDER BY g.created_at DESC, g.id DESC LIMIT :limit OFFSET :offset""",
                {
                    "platform": gallery.platform,
                    "chat_id": gallery.chat_id,
                    "now": now,
                    "limit": limit,
                    "offset": offset,
                },
            )
        return [
            PageEntry(_melody(row), row["composer"] if gallery.show_names else None) for row in rows
        ]

    async def _gallery_where(
        self, connection: aiosqlite.Connection, where: str, params: tuple
    ) -> Gallery | None:
        row = await self._fetchone(  # type: ignore[attr-defined]
            connection,
            f"""SELECT platform, chat_id, page_id, enabled, show_names, changed_at
                FROM galleries WHERE {where}""",
            params,
        )
        return None if row is None else _gallery(row)


def _gallery(row) -> Gallery:
    return Gallery(
        row["platform"],
        row["chat_id"],
        row["page_id"],
        bool(row["enabled"]),
        bool(row["show_names"]),
        row["changed_at"],
    )


def _gallery_state(gallery: Gallery) -> str:
    if not gallery.enabled:
        return "off"
    return "on, with names" if gallery.show_names else "on"
