"""The pages' HTML: plain markup, no script, one stylesheet, everything escaped."""

from __future__ import annotations

from html import escape

from bot.wording import melodies, utc
from storage import MelodyRecord

STYLESHEET = "/static/page.css"


def page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{STYLESHEET}">\n</head>\n'
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def melody_page(
    heading: str, record: MelodyRecord, composer: str | None, prefix: str, audio: bool
) -> str:
    """A melody's page: what the chat reply says, the score, a player, the files, and the
    request written out, so a reader can ask for a variation in their own chat."""
    files = f"/m/{escape(record.page_id or '')}"
    by = f" by {escape(composer)}" if composer else ""
    player = (
        f'<audio controls preload="metadata" src="{files}/preview.mp3"></audio>\n' if audio else ""
    )
    request = escape(f"{prefix}melody {record.request['canonical']}")
    body = (
        f"<h1>{escape(heading)}</h1>\n"
        f'<p class="made">Composed {escape(utc(record.created_at))}{by}</p>\n'
        f'<figure class="score"><img src="{files}/score.svg" alt="The score of this melody">'
        "</figure>\n"
        f"{player}"
        f'<p class="files"><a href="{files}/melody.mid" download>MIDI file</a> · '
        f'<a href="{files}/melody.musicxml" download>MusicXML</a></p>\n'
        '<section class="request"><h2>Make your own</h2>\n'
        "<p>Ask the bot for this melody's opening in your chat, and change what you like:</p>\n"
        f"<pre><code>{request}</code></pre></section>"
    )
    return page(heading, body)


def gallery_page(
    entries: list[tuple[str, MelodyRecord, str | None]], number: int, more: bool
) -> str:
    """A chat's recent melodies, newest first, twenty to a page."""
    items = "\n".join(
        f'<li><a href="/m/{escape(record.page_id or "")}">{escape(heading)}</a>'
        f'<span class="made">{escape(utc(record.created_at))}'
        f"{' · ' + escape(composer) if composer else ''}</span></li>"
        for heading, record, composer in entries
    )
    pages = []
    if number > 1:
        pages.append(f'<a rel="prev" href="?page={number - 1}">Newer</a>')
    if more:
        pages.append(f'<a rel="next" href="?page={number + 1}">Older</a>')
    count = melodies(len(entries))
    body = (
        "<h1>Melodies of this chat</h1>\n"
        f'<p class="made">Page {number}: {count}, newest first.</p>\n'
        f'<ol class="gallery">\n{items}\n</ol>\n'
        f'<nav class="pages">{" · ".join(pages)}</nav>'
    )
    return page("Melodies of this chat", body)


def gone_page() -> str:
    return page(
        "Removed",
        "<h1>This melody is no longer here</h1>\n"
        "<p>It was removed: its composer or the chat asked for it, or it was deleted with "
        "older ones.</p>",
    )


def not_found_page() -> str:
    return page("Not found", "<h1>No melody here</h1>\n<p>Check the link you were given.</p>")
