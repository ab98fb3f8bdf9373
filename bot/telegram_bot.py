"""Telegram front-end (python-telegram-bot 22): messages in, core replies out as photo, file, audio.

A thin adapter: it turns an update into an :class:`~bot.core.Incoming`, asks Telegram whether the
sender administers the group when a moderator command needs to know, shows "typing…" while a
melody is made, and sends the :class:`~bot.replies.Reply` with Telegram's own methods. Outgoing
flood limits are PTB's ``AIORateLimiter``'s job; a lost connection or one of Telegram's own 5xx
answers is tried again (tenacity), so a passing fault does not cost a user their melody.

Telegram forgets an update as soon as the next ones are asked for, so a process killed between
fetching a message and recording what it asked would lose it. The update queue therefore writes
each update to the database's inbox before the next fetch (:class:`DurableUpdateQueue`); an update
is crossed off once handled, and the next process replays what is left. A message seen twice
makes one melody (its update id is the melody's ``source``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
import weakref
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, MessageEntityType
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from bot import registry
from bot.app import App
from bot.commands import CommandError
from bot.incoming import Incoming
from bot.platforms import FrontEndFailure
from bot.replies import Delivered, FollowUps, Reply, melody_in
from bot.telegram_inline import on_inline_query
from storage import Repository

log = logging.getLogger("melodybot.telegram")
PLATFORM = "telegram"
MAX_TEXT = 4096
MAX_CAPTION = 1024
PHOTO_MAX_BYTES = 10 * 2**20
PHOTO_MAX_SIDES_PX = 10_000
PHOTO_MAX_RATIO = 20
CHAT_ACTION_AFTER_S = 0.5
CHAT_ACTION_EVERY_S = 4.5  # an action shows for 5 s
MAX_CALLBACK_DATA = 64
DEEP_LINK = re.compile(r"/start(@\w+)?\s+m(?P<id>\d{1,19})")
ADMIN_STATUSES = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
SEND_ATTEMPTS = 4  # about 7 s of waiting in all, well within a user's patience


def _passing(error: BaseException) -> bool:
    """A lost connection, a timeout or Telegram's 5xx (PTB's NetworkError) may pass; a refusal
    (BadRequest, a NetworkError too) will not, nor will a blocked user or a revoked token."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


@retry(
    retry=retry_if_exception(_passing),
    stop=stop_after_attempt(SEND_ATTEMPTS),
    wait=wait_exponential(multiplier=0.5, max=4),
    reraise=True,
)
async def _send(method, **fields):
    """One Bot API call, tried again while it fails in a way that may pass."""
    return await method(**fields)


def build_application(app: App) -> Application:
    settings = app.settings
    if settings.telegram_token is None:
        raise ValueError("TELEGRAM_TOKEN is not set")
    builder = (
        Application.builder()
        .token(settings.telegram_token.get_secret_value())
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)
        .update_queue(DurableUpdateQueue(app.repo))
    )
    if settings.telegram_base_url:
        base = settings.telegram_base_url.rstrip("/")
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    application = builder.build()
    application.bot_data["app"] = app
    application.add_handler(MessageHandler(filters.TEXT & ~filters.UpdateType.EDITED, on_text))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(InlineQueryHandler(on_inline_query))
    application.add_handler(TypeHandler(Update, cross_off), group=1)  # after every other handler
    application.add_error_handler(on_error)
    return application


class DurableUpdateQueue(asyncio.Queue):
    """PTB's update queue, written through to the inbox. The updater asks Telegram for more
    updates (which tells Telegram to forget these) only once ``put`` has returned, so an update is
    in the database before Telegram lets it go."""

    def __init__(self, repo: Repository):
        super().__init__()
        self.repo = repo

    async def put(self, item: object) -> None:
        if isinstance(item, Update):
            try:
                await self.repo.inbox_add(PLATFORM, item.update_id, json.dumps(item.to_dict()))
            except Exception as error:  # handled all the same, only not replayed after a crash
                log.warning("telegram: update %s not kept in the inbox: %s", item.update_id, error)
        await super().put(item)


async def replay_inbox(application: Application) -> int:
    """Hand the updates a stopped process received but never finished to this one; returns
    how many."""
    app: App = application.bot_data["app"]
    pending = await app.repo.inbox(PLATFORM)
    for _update_id, payload in pending:
        update = Update.de_json(json.loads(payload), application.bot)
        await application.update_queue.put(update)
    if pending:
        log.warning(
            "telegram: replaying %d messages a stopped process left unanswered", len(pending)
        )
    return len(pending)


async def cross_off(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every handler has run for this update (answered or failed): nothing to replay."""
    app: App = context.application.bot_data["app"]
    try:
        await app.repo.inbox_done(PLATFORM, update.update_id)
    except Exception as error:  # replayed after a crash at worst, and a melody is never made twice
        log.warning("telegram: update %s not crossed off: %s", update.update_id, error)


async def register_commands(application: Application) -> None:
    """The command menus users see when they type '/': everyone's commands for everyone, and
    the moderators' too for the administrators of each group (who are its moderators)."""
    menu = [BotCommand(s.name, s.summary[:256]) for s in registry.commands()]
    everyone = [
        command for command, s in zip(menu, registry.commands(), strict=True) if not s.moderator
    ]
    try:
        await application.bot.set_my_commands(everyone)
        await application.bot.set_my_commands(menu, scope=BotCommandScopeAllChatAdministrators())
    except TelegramError as error:
        log.warning("could not register the command menu: %s", error)


def webhook_secret(settings) -> str:
    """The secret Telegram sends with every webhook update (``X-Telegram-Bot-Api-Secret-Token``):
    the configured one, or one derived from the token, the same in every process."""
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    token = settings.telegram_token.get_secret_value()
    return hashlib.sha256(f"melodybot webhook {token}".encode()).hexdigest()


def incoming_from(
    message: Message,
    update_id: int | None = None,
    *,
    user: User | None = None,
    text: str | None = None,
) -> Incoming:
    """A message (or a button pressed under one: then ``user`` pressed it and ``text`` is the
    command it runs) as the core reads it."""
    user = user or message.from_user
    assert user is not None
    mentions = tuple(
        (str(entity.user.id), entity.user.full_name)
        for entity in message.entities
        if entity.type == MessageEntityType.TEXT_MENTION and entity.user is not None
    )
    reply_to, answers_melody = None, None
    answered = message.reply_to_message
    if answered is not None and answered.from_user is not None:
        author = answered.from_user
        reply_to = (str(author.id), author.username or author.full_name)
        if author.is_bot:
            answers_melody = melody_in(answered.caption or answered.text or "")
    return Incoming(
        platform=PLATFORM,
        chat_id=str(message.chat_id),
        user_id=str(user.id),
        user_name=user.username or user.full_name,
        text=_deep_link(message.text or "") if text is None else text,
        mentions=mentions,
        reply_to=reply_to,
        answers_melody=answers_melody,
        reply_address=address_of(message),
        source=None if update_id is None else f"{PLATFORM}:update:{update_id}",
        audio_format="voice",  # Telegram plays OGG/Opus voice notes inline
    )


def address_of(message: Message) -> str:
    """Where replies to this message go: its chat, and its forum topic if it has one."""
    if message.is_topic_message and message.message_thread_id is not None:
        return f"{message.chat_id}:{message.message_thread_id}"
    return str(message.chat_id)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or message.from_user is None or not message.text:
        return
    await _answer(context, message, incoming_from(message, update.update_id))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply's button ("Again", "Vary"): its data is the command it runs, in the chat the
    melody is in, for whoever pressed it."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    with contextlib.suppress(TelegramError):  # stops the button's spinner; a courtesy
        await query.answer()
    message = query.message
    if not isinstance(message, Message):  # too old for Telegram to say where it was
        return
    app: App = context.application.bot_data["app"]
    text = f"{app.settings.prefix}{query.data}"
    await _answer(
        context, message, incoming_from(message, update.update_id, user=query.from_user, text=text)
    )


def _deep_link(text: str) -> str:
    """``/start m12``, what a ``t.me/<bot>?start=m12`` link sends, asks for melody 12."""
    match = DEEP_LINK.fullmatch(text.strip())
    return f"/show {match['id']}" if match else text


async def _answer(context: ContextTypes.DEFAULT_TYPE, message: Message, incoming: Incoming) -> None:
    app: App = context.application.bot_data["app"]

    async def is_moderator() -> bool:
        """Group administrators moderate; in a private chat nobody does (quota evasion)."""
        if message.chat.type == ChatType.PRIVATE:
            return False
        try:
            member = await context.bot.get_chat_member(message.chat_id, int(incoming.user_id))
        except TelegramError as error:  # fails safe: nobody moderates without Telegram's word
            log.warning(
                "telegram: could not ask who administers chat %s: %s", message.chat_id, error
            )
            raise CommandError(
                "I couldn't ask Telegram whether you administer this chat. Try again in a minute."
            ) from None
        return member.status in ADMIN_STATUSES

    where = {"chat_id": message.chat_id, "message_thread_id": message.message_thread_id}
    async with contextlib.AsyncExitStack() as composing:

        async def typing() -> None:
            action = ChatAction.UPLOAD_DOCUMENT
            await composing.enter_async_context(chat_action_if_slow(context.bot, where, action))

        reply = await app.core.handle(
            incoming,
            is_moderator=is_moderator,
            on_work_started=typing,
            bot_username=context.bot.username,
        )
    if reply is None:
        return
    try:
        await send_reply(
            context.bot, address_of(message), reply, on_delivered=lambda: app.core.delivered(reply)
        )
    except Forbidden as error:  # the user blocked the bot: a choice of theirs, not a fault
        log.info("telegram: chat %s does not take messages: %s", message.chat_id, error)
        await app.core.undelivered(reply, f"Telegram: {error}")
    except TelegramError as error:  # they got nothing
        await app.core.undelivered(reply, f"Telegram: {error}")
        raise


async def send_reply(bot: Bot, address: str, reply: Reply, on_delivered: Delivered) -> None:
    """The text and the MIDI file first (one message, the text as the file's caption), then the
    score as a photo and the preview as a voice note (or audio) as each is made, to the chat
    (and topic) ``address`` names; raises only if the text or the MIDI did not go out.
    ``on_delivered`` runs as soon as they are out.

    The MIDI is the melody itself: once it is out the user has their melody, so a picture or
    audio that fails, or that Telegram refuses (too large, odd dimensions), costs a line saying
    so and nothing more. While a part is being made the chat shows "sending a photo…".
    """
    chat_id, _, thread = address.partition(":")
    where = {"chat_id": int(chat_id), "message_thread_id": int(thread) if thread else None}
    caption = reply.attachment("midi") is not None and len(reply.text) <= MAX_CAPTION
    gate = _first_parts_first()
    try:
        async with gate.sending():
            await _send_first_part(bot, where, reply, caption)
    except BaseException:
        if reply.follow_ups is not None:
            reply.follow_ups.cancel()
        raise
    await on_delivered()
    if reply.follow_ups is not None:
        try:
            await _send_follow_ups(bot, where, reply.follow_ups, gate)
        except Exception:  # the user has the melody; what follows it is a courtesy
            log.exception("telegram: the picture or audio for chat %s failed", where["chat_id"])


async def _send_first_part(bot: Bot, where: dict, reply: Reply, caption: bool) -> None:
    """The text and the MIDI: the text as the file's caption when it fits, else as messages."""
    midi = reply.attachment("midi")
    buttons = keyboard_of(reply)
    if not caption:
        chunks = [reply.text[i : i + MAX_TEXT] for i in range(0, len(reply.text), MAX_TEXT)]
        for number, chunk in enumerate(chunks, 1):
            last = number == len(chunks) and midi is None
            await _send(
                bot.send_message, text=chunk, reply_markup=buttons if last else None, **where
            )
    if midi is not None:
        await _send(
            bot.send_document,
            document=midi.data,
            filename=midi.filename,
            caption=reply.text if caption else None,
            reply_markup=buttons,
            **where,
        )


def keyboard_of(reply: Reply) -> InlineKeyboardMarkup | None:
    """A reply's actions as buttons under its message; each carries the command it runs (at
    most 64 bytes, Telegram's limit: an action that does not fit is left to the text)."""
    buttons = [
        InlineKeyboardButton(action.label, callback_data=action.command)
        for action in reply.actions
        if len(action.command.encode()) <= MAX_CALLBACK_DATA
    ]
    return InlineKeyboardMarkup([buttons]) if buttons else None


class FirstPartsFirst:
    """Telegram lets a bot make about 30 requests a second in all, and python-telegram-bot's
    rate limiter serves them in the order asked. Under load the MIDI of a melody just composed
    would wait behind other users' pictures and voice notes; here a picture or voice note waits
    its turn while any melody's first part is being sent (at most HOLD_S, so none waits for
    ever)."""

    HOLD_S = 3.0

    def __init__(self) -> None:
        self._sending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def sending(self):
        self._sending += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._sending -= 1
            if self._sending == 0:
                self._idle.set()

    async def wait_turn(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.HOLD_S)


_GATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _first_parts_first() -> FirstPartsFirst:
    """The event loop's gate (one per loop: the bot's one Telegram connection lives in it)."""
    loop = asyncio.get_running_loop()
    if loop not in _GATES:
        _GATES[loop] = FirstPartsFirst()
    return _GATES[loop]


async def _send_follow_ups(
    bot: Bot, where: dict, follow_ups: FollowUps, gate: FirstPartsFirst
) -> None:
    async for _part, made in _announced(bot, where, follow_ups):
        await gate.wait_turn()
        if isinstance(made, str):
            with contextlib.suppress(TelegramError):
                await bot.send_message(text=made, **where)
        elif made.kind == "png":
            method, field = (
                (bot.send_photo, "photo")
                if fits_as_photo(made.data)
                else (bot.send_document, "document")
            )
            await _optional(
                "score picture", bot, where, method, **{field: made.data}, filename=made.filename
            )
        elif made.kind == "musicxml":
            await _optional(
                "MusicXML file",
                bot,
                where,
                bot.send_document,
                document=made.data,
                filename=made.filename,
            )
        elif made.kind == "voice":
            await _optional(
                "voice note", bot, where, bot.send_voice, voice=made.data, filename=made.filename
            )
        else:
            await _optional(
                "audio preview",
                bot,
                where,
                bot.send_audio,
                audio=made.data,
                filename=made.filename,
                title=made.filename.rsplit(".", 1)[0],
                performer="melodybot",
            )


CHAT_ACTIONS = {"png": ChatAction.UPLOAD_PHOTO, "voice": ChatAction.UPLOAD_VOICE}


async def _announced(bot: Bot, where: dict, follow_ups: FollowUps):
    """Each part as it is made, the chat showing "sending a photo…" while the user waits for
    the first of them if that takes a while (one chat action per melody at most: each counts
    against the bot's requests a second)."""
    for number, part in enumerate(follow_ups.parts):
        if number == 0:
            action = CHAT_ACTIONS.get(part.kind, ChatAction.UPLOAD_DOCUMENT)
            async with chat_action_if_slow(bot, where, action):
                made = await part.result()
        else:
            made = await part.result()
        yield part, made


@contextlib.asynccontextmanager
async def chat_action_if_slow(bot: Bot, where: dict, action: str):
    """Show ``action`` ("sending a file…") if the work inside takes longer than a moment, and
    again every few seconds while it lasts. A melody that is ready at once needs none, and
    every chat action counts against the bot's 30 requests a second, which a busy bot needs
    for the melodies themselves. A courtesy: a failing chat action changes nothing."""

    async def later() -> None:
        await asyncio.sleep(CHAT_ACTION_AFTER_S)
        while True:  # Telegram shows an action for about 5 s: renewed while the work goes on
            with contextlib.suppress(TelegramError):
                await bot.send_chat_action(action=action, **where)
            await asyncio.sleep(CHAT_ACTION_EVERY_S)

    indicator = asyncio.ensure_future(later())
    try:
        yield
    finally:
        indicator.cancel()


def fits_as_photo(png: bytes) -> bool:
    """Whether Telegram takes the picture as a photo: at most 10 MB, width and height adding up to
    at most 10,000 px, neither side over 20 times the other. Otherwise it goes as a file."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
    return (
        len(png) <= PHOTO_MAX_BYTES
        and width + height <= PHOTO_MAX_SIDES_PX
        and max(width, height) <= PHOTO_MAX_RATIO * min(width, height)
    )


async def _optional(what: str, bot: Bot, where: dict, method, **fields) -> None:
    """Send a file the melody can do without; if Telegram will not take it, say so and go on."""
    try:
        await _send(method, **fields, **where)
    except TelegramError as refused:
        log.warning("telegram refused the %s for chat %s: %s", what, where["chat_id"], refused)
        with contextlib.suppress(TelegramError):
            await bot.send_message(text=f"(Telegram would not take the {what}.)", **where)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Platform errors are logged with the update id; the bot keeps serving everyone else."""
    update_id = getattr(update, "update_id", "?")
    log.error("update %s failed: %s", update_id, context.error, exc_info=context.error)


# the front-end the runner starts -------------------------------------------------------------


class TelegramFrontEnd:
    name = "telegram"
    audio_format = "voice"  # Telegram plays OGG/Opus voice notes inline

    def __init__(self, app: App):
        self.app = app
        self.application = build_application(app)
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.started = asyncio.Event()

    async def start(self) -> None:
        # python-telegram-bot's polling retries lost connections itself; only a rejected token
        # is fatal, and it shows at start.
        try:
            await self.application.initialize()
        except InvalidToken:  # its message quotes the token: say what to fix instead
            raise FrontEndFailure(
                "Telegram rejected TELEGRAM_TOKEN: check it with @BotFather (/token)."
            ) from None
        await register_commands(self.application)
        await self.application.start()
        await replay_inbox(self.application)
        settings = self.app.settings
        if settings.telegram_webhook_url:
            url = settings.telegram_webhook_url
            await self.application.updater.start_webhook(
                listen="0.0.0.0",
                port=settings.telegram_webhook_port,
                url_path=urlsplit(url).path.lstrip("/"),
                webhook_url=url,
                secret_token=webhook_secret(settings),
                allowed_updates=Update.ALL_TYPES,
            )
            how = f"on a webhook at {url} (port {settings.telegram_webhook_port})"
        else:
            await self.application.updater.start_polling(timeout=20, poll_interval=0.0)
            how = "polling"
        self.started.set()
        log.info("telegram: %s as @%s", how, self.application.bot.username)

    async def stop_intake(self) -> None:
        """Fetch (or accept) no more updates: those not taken wait on Telegram for the next
        process. A webhook stays registered: the other processes behind it go on serving."""
        if self.application.updater.running:
            await self.application.updater.stop()

    async def send_to(self, address: str, reply: Reply, on_delivered: Delivered) -> None:
        await self.started.wait()
        await send_reply(self.application.bot, address, reply, on_delivered)

    async def stop(self) -> None:
        await self.stop_intake()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
