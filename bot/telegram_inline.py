"""Telegram inline mode: ``@<bot> C4 D4 E4 temp=0.8`` typed in any chat, the bot a member or
not, offers the melody as an audio result the user sends with one tap, with its page's link.

Telegram asks again at every keystroke, so a melody is composed only once the user pauses
(``PAUSE_S``: a newer query from them cancels the older one), and the same query from the same
user within ``REMEMBER_S`` gets the melody already made: typing costs no quota, a melody does.
Limits and bans apply as in a chat (scope ``inline``; a platform-wide ban or limit reaches it).
The audio is the melody page's preview, fetched by Telegram when the result is sent, so inline
mode needs the pages to be public (``MELODYBOT_PUBLIC_URL``); a request that cannot be composed
gets a result that says why, as does a bot without public pages.
"""

from __future__ import annotations

import asyncio
import logging
import time

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultAudio,
    InputTextMessageContent,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.app import App
from bot.incoming import Incoming
from bot.replies import Reply

log = logging.getLogger("melodybot.telegram")
PLATFORM = "telegram"
INLINE_CHAT = "inline"  # the scope of melodies asked for inline: limits and bans of their own
PAUSE_S = 0.8
REMEMBER_S = 600.0
CACHE_TIME_S = 300  # how long Telegram may answer the same query itself
MAX_REMEMBERED = 10_000


class InlineAnswers:
    """Which query of each user is the latest, and the melodies made for recent queries."""

    def __init__(self) -> None:
        self.latest: dict[int, str] = {}  # user id → inline query id
        self.made: dict[tuple[int, str], tuple[float, Reply]] = {}

    def remembered(self, user_id: int, query: str) -> Reply | None:
        kept = self.made.get((user_id, query))
        if kept is None or time.monotonic() - kept[0] > REMEMBER_S:
            return None
        return kept[1]

    def remember(self, user_id: int, query: str, reply: Reply) -> None:
        if len(self.made) > MAX_REMEMBERED:
            now = time.monotonic()
            self.made = {k: v for k, v in self.made.items() if now - v[0] < REMEMBER_S}
        self.made[(user_id, query)] = (time.monotonic(), reply)


async def on_inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.inline_query
    if query is None:
        return
    app: App = context.application.bot_data["app"]
    answers: InlineAnswers = context.application.bot_data.setdefault("inline", InlineAnswers())
    text = " ".join(query.query.split())
    if not text:
        await _answer(query, [_article("Type your opening notes", EXAMPLE_HELP)])
        return
    public = app.settings.public_url
    if not public:
        await _answer(query, [_article("Inline melodies are off here", NO_PAGES)])
        return
    reply = answers.remembered(query.from_user.id, text)
    if reply is None:
        answers.latest[query.from_user.id] = query.id
        await asyncio.sleep(PAUSE_S)
        if answers.latest.get(query.from_user.id) != query.id:
            return  # the user typed on: that newer query is answered instead
        reply = await app.core.handle(_incoming(query, text))
        if reply is None:
            return
        if reply.follow_ups is not None:  # the page makes the audio when Telegram fetches it
            reply.follow_ups.cancel()
        if reply.melody_id is not None:
            answers.remember(query.from_user.id, text, reply)
            await app.core.delivered(reply)
    if reply.melody_id is None:  # a mistake, a refusal: say so where the result would be
        await _answer(query, [_article("I can't compose that", reply.text)], personal=True)
        return
    await _answer(query, [await _audio_result(app, reply)], personal=True)


def _incoming(query, text: str) -> Incoming:
    user = query.from_user
    return Incoming(
        platform=PLATFORM,
        chat_id=INLINE_CHAT,
        user_id=str(user.id),
        user_name=user.username or user.full_name,
        text=f"/melody {text}",
        source=f"{PLATFORM}:inline:{query.id}",
    )


async def _audio_result(app: App, reply: Reply) -> InlineQueryResultAudio:
    assert reply.melody_id is not None
    record = await app.repo.get_melody(reply.melody_id)
    assert record is not None and record.page_id is not None
    base = (app.settings.public_url or "").rstrip("/")
    page = f"{base}/m/{record.page_id}"
    heading = reply.text.splitlines()[0]
    return InlineQueryResultAudio(
        id=f"melody-{reply.melody_id}",
        audio_url=f"{page}/preview.mp3",
        title=heading,
        performer="melodybot",
        caption=f"{heading}\n{page}",
    )


def _article(title: str, text: str) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=f"note-{abs(hash((title, text))) % 10**12}",
        title=title,
        description=text[:200],
        input_message_content=InputTextMessageContent(text[:4096]),
    )


async def _answer(query, results, *, personal: bool = False) -> None:
    try:
        await query.answer(results, cache_time=CACHE_TIME_S, is_personal=personal)
    except TelegramError as error:  # expired (the user typed on) or refused: nothing to show
        log.info("telegram: inline query %s not answered: %s", query.id, error)


EXAMPLE_HELP = "Type notes after my name, e.g. C4 D4 E4 temp=0.8, and send the melody I offer."
NO_PAGES = (
    "This bot's melody pages are not public, which inline melodies need. "
    "Ask me in a chat instead: /melody C4 D4 E4"
)
