"""The routes of the melody pages, added to the aiohttp app that serves ``/health``.

Every request asks storage first, so a melody that was forgotten, deleted by retention or whose
composer is banned answers 410 Gone at once, its files too, and no copy outlives it. Pages carry
no user or chat id and no script; a strict Content-Security-Policy lets them load only their own
stylesheet, score and audio.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

from bot.composer import stored_melody
from bot.jobs import DRAW_SVG, PLAY, WRITE_MUSICXML
from bot.pages import html
from bot.pages.files import MadeOnce
from bot.wording import heading, opening
from storage import MelodyRecord, PageEntry
from storage.pages import GONE

if TYPE_CHECKING:
    from bot.app import App

GALLERY_PAGE_SIZE = 20
MAX_GALLERY_PAGE = 50_000  # a number past any chat's melodies, short of SQLite's limits
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
PAGE_CACHE = "no-cache"  # always asked again: a removed melody must not live on in a cache
FILE_CACHE = "public, max-age=300"  # a few minutes: removal reaches files soon too
# file name → (how it is made, content type, a download?)
FILES = {
    "score.svg": ("svg", "image/svg+xml", False),
    "preview.mp3": ("mp3", "audio/mpeg", False),
    "melody.mid": ("midi", "audio/midi", True),
    "melody.musicxml": ("musicxml", "application/vnd.recordare.musicxml+xml", True),
}


class PageServer:
    def __init__(self, app: App, files: MadeOnce | None = None):
        self.app = app
        self.files = files or MadeOnce()
        self.stylesheet = (resources.files("bot.pages") / "page.css").read_bytes()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/m/{page_id}", self.melody),
            web.get("/m/{page_id}/{name}", self.melody_file),
            web.get("/g/{page_id}", self.gallery),
            web.get(html.STYLESHEET, self.style),
        ]

    # pages ---------------------------------------------------------------------------------

    async def melody(self, request: web.Request) -> web.Response:
        found = await self.app.repo.melody_page(request.match_info["page_id"])
        if not isinstance(found, PageEntry):
            return self._missing(found)
        body = html.melody_page(
            _title(found.melody),
            found.melody,
            found.composer,
            self.app.settings.prefix,
            audio=self.app.core.composer.audio_enabled,
        )
        return _html(body)

    async def gallery(self, request: web.Request) -> web.Response:
        gallery = await self.app.repo.gallery(request.match_info["page_id"])
        if gallery is None:
            return _html(html.not_found_page(), status=404)
        if not gallery.enabled:
            return _html(html.gone_page(), status=410)
        number = _page_number(request.query.get("page", "1"))
        if number is None:
            raise web.HTTPBadRequest(text="page= is a page number: 1, 2, …")
        entries = await self.app.repo.gallery_entries(
            gallery, limit=GALLERY_PAGE_SIZE + 1, offset=(number - 1) * GALLERY_PAGE_SIZE
        )
        shown = []
        for entry in entries[:GALLERY_PAGE_SIZE]:
            shown.append((_title(entry.melody), entry.melody, entry.composer))
        return _html(html.gallery_page(shown, number, more=len(entries) > GALLERY_PAGE_SIZE))

    async def style(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self.stylesheet,
            content_type="text/css",
            charset="utf-8",
            headers=SECURITY_HEADERS | {"Cache-Control": "public, max-age=86400"},
        )

    # files ---------------------------------------------------------------------------------

    async def melody_file(self, request: web.Request) -> web.Response:
        page_id, name = request.match_info["page_id"], request.match_info["name"]
        if name not in FILES:
            return _html(html.not_found_page(), status=404)
        found = await self.app.repo.melody_page(page_id)
        if not isinstance(found, PageEntry):
            self.files.forget(page_id)
            return self._missing(found)
        kind, content_type, download = FILES[name]
        data = await self._made(found, kind)
        if data is None:
            return _html(html.not_found_page(), status=404)
        headers = SECURITY_HEADERS | {"Cache-Control": FILE_CACHE}
        if download:
            headers["Content-Disposition"] = (
                f'attachment; filename="melody-{found.melody.id}.{name.rsplit(".", 1)[1]}"'
            )
        return web.Response(body=data, content_type=content_type, headers=headers)

    async def _made(self, entry: PageEntry, kind: str) -> bytes | None:
        record = entry.melody
        if kind == "midi":
            return record.midi
        melody = stored_melody(record)
        if melody is None:  # kept from before melodies kept their steps: the MIDI is all
            return None
        if kind == "mp3" and not self.app.core.composer.audio_enabled:
            return None
        title = f"#{record.id} · {opening(melody.request)}"
        job, payload = {
            "svg": (DRAW_SVG, (melody, title)),
            "mp3": (PLAY, (melody, "mp3")),
            "musicxml": (WRITE_MUSICXML, (melody, title)),
        }[kind]

        async def make() -> bytes:
            made = await self.app.pool.run(job, payload)
            if isinstance(made, Exception):
                raise web.HTTPServiceUnavailable(text=f"could not make it: {made}")
            return made

        return await self.files.get((record.page_id or "", kind), make)

    def _missing(self, found: object) -> web.Response:
        if found == GONE:
            return _html(html.gone_page(), status=410)
        return _html(html.not_found_page(), status=404)


def _title(record: MelodyRecord) -> str:
    """The melody's first line, as its chat reply has it (the number alone for a melody kept
    from before melodies kept their steps)."""
    melody = stored_melody(record)
    return heading(record.id, melody) if melody else f"#{record.id}"


def _html(body: str, *, status: int = 200) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS | {"Cache-Control": PAGE_CACHE},
    )


def _page_number(text: str) -> int | None:
    if not text.isdecimal() or not 1 <= int(text) <= MAX_GALLERY_PAGE:
        return None
    return int(text)
