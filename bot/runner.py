"""Running the chat front-ends in one event loop until SIGTERM/SIGINT, then shutting down cleanly.

On a stop signal the front-ends stop taking messages first, melodies in flight finish (bounded by
the pool's drain timeout), and the database is closed last, so nothing is lost on a restart.

A front-end whose platform connection is gone for good (Discord closed the gateway, say, because
the Message Content intent is off) stops the process the same clean way, and the process exits
with a message that says what to fix: a bot that cannot hear its users must not look alive to
its health check, and its supervisor should restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from functools import partial
from typing import Protocol

from bot.app import App, open_app
from bot.config import Settings
from bot.health import Heartbeat
from bot.housekeeping import Housekeeping
from bot.replies import Delivered, Reply
from bot.takeover import take_over_interrupted

log = logging.getLogger("melodybot")


class FrontEndFailure(RuntimeError):
    """A front-end cannot run or lost its platform for good; the message says what to fix and
    never holds a secret."""


class FrontEnd(Protocol):
    name: str
    audio_format: str  # the audio preview the platform plays best (see Incoming.audio_format)
    gone: asyncio.Future[str]  # set, with what happened, once the platform connection is lost

    async def start(self) -> None: ...

    async def stop_intake(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_to(self, address: str, reply: Reply, on_delivered: Delivered) -> None:
        """Send a reply to a stored address (what :class:`~bot.core.Incoming` carried), and
        its follow-ups after ``on_delivered``."""


class TelegramFrontEnd:
    name = "telegram"
    audio_format = "voice"  # Telegram plays OGG/Opus voice notes inline

    def __init__(self, app: App):
        from bot.telegram_bot import build_application

        self.application = build_application(app)
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.started = asyncio.Event()

    async def start(self) -> None:
        from telegram.error import InvalidToken

        from bot.telegram_bot import register_commands, replay_inbox

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
        await self.application.updater.start_polling(timeout=20, poll_interval=0.0)
        self.started.set()
        log.info("telegram: polling as @%s", self.application.bot.username)

    async def stop_intake(self) -> None:
        """Fetch no more updates: those not fetched wait on Telegram for the next process."""
        if self.application.updater.running:
            await self.application.updater.stop()

    async def send_to(self, address: str, reply: Reply, on_delivered: Delivered) -> None:
        from bot.telegram_bot import send_reply

        await self.started.wait()
        await send_reply(self.application.bot, address, reply, on_delivered)

    async def stop(self) -> None:
        await self.stop_intake()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()


class DiscordFrontEnd:
    name = "discord"
    audio_format = "mp3"

    def __init__(self, app: App):
        from bot.discord_bot import MelodyBot

        self.bot = MelodyBot(app)
        self._task: asyncio.Task | None = None
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        import discord

        token = self.bot.app.settings.discord_token
        assert token is not None
        try:
            await self.bot.login(token.get_secret_value())
        except discord.LoginFailure:
            raise FrontEndFailure(_DISCORD_TOKEN_REJECTED) from None
        self._task = asyncio.create_task(self.bot.connect(reconnect=True), name="discord")
        self._task.add_done_callback(self._connection_ended)

    def _connection_ended(self, task: asyncio.Task) -> None:
        """discord.py reconnects by itself; when its connect() ends, the gateway is gone."""
        if self.gone.done() or task.cancelled():
            return  # stopped on purpose
        error = task.exception()
        if error is None and self.bot.is_closed():
            return  # closed on purpose
        log.error("discord: the gateway connection is gone", exc_info=error)
        self.gone.set_result(_discord_failure(error))

    async def stop_intake(self) -> None:
        """Discord cannot hold events back: they keep arriving and the core answers that the
        bot is restarting."""

    async def send_to(self, address: str, reply: Reply, on_delivered: Delivered) -> None:
        await self.bot.send_to(address, reply, on_delivered)

    async def stop(self) -> None:
        if not self.gone.done():
            self.gone.cancel()  # stopping on purpose is not a lost connection
        await self.bot.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


_DISCORD_TOKEN_REJECTED = (
    "Discord rejected DISCORD_TOKEN: reset it in the Developer Portal (Bot → Reset Token)."
)


def _discord_failure(error: BaseException | None) -> str:
    """What an operator should know about a gateway that closed for good."""
    import discord

    if isinstance(error, discord.PrivilegedIntentsRequired):
        return (
            "Discord closed the gateway: the Message Content intent is off for this bot. Turn it "
            "on in the Developer Portal (Bot → Privileged Gateway Intents), then start again."
        )
    if isinstance(error, discord.LoginFailure) or (
        isinstance(error, discord.ConnectionClosed) and error.code == 4004
    ):
        return _DISCORD_TOKEN_REJECTED
    if isinstance(error, discord.ConnectionClosed):
        return f"Discord closed the gateway for good (close code {error.code})."
    what = type(error).__name__ if error is not None else "it ended"
    return f"Discord's gateway connection is gone ({what})."


async def run_bots(
    settings: Settings, *, discord: bool, telegram: bool, stop: asyncio.Event | None = None
) -> None:
    """Start the wanted front-ends (those with a token) and serve until ``stop`` or a signal."""
    app = await open_app(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    front_ends: list[FrontEnd] = []
    if telegram and settings.telegram_token:
        front_ends.append(TelegramFrontEnd(app))
    if discord and settings.discord_token:
        front_ends.append(DiscordFrontEnd(app))
    heartbeat = Heartbeat(settings, [f.name for f in front_ends])
    housekeeping = Housekeeping(
        app.repo,
        settings,
        # each round also finishes and sends what the platform's stopped processes left
        [
            partial(take_over_interrupted, app, f.name, f.send_to, f.audio_format)
            for f in front_ends
        ],
    )
    failure: str | None = None
    try:
        # Housekeeping first: melodies a stopped process left go to the pool ahead of anyone
        # who asks once the front-ends listen (they are sent once the front-ends are up).
        await housekeeping.start()
        for front_end in front_ends:
            await front_end.start()
        await heartbeat.start()
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            [stopping, *(f.gone for f in front_ends)], return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()
        lost = [f.gone.result() for f in front_ends if f.gone.done() and not f.gone.cancelled()]
        failure = lost[0] if lost else None
        if failure:
            log.error("%s Stopping.", failure)
        log.info("stopping: no new messages, finishing melodies in flight")
    finally:
        # Intake first, then the work (so replies to melodies in flight can still be sent),
        # then the connections, then the database.
        for front_end in front_ends:
            with contextlib.suppress(Exception):
                await front_end.stop_intake()
        await app.stop_work()
        await housekeeping.stop()
        for front_end in reversed(front_ends):
            try:
                await front_end.stop()
            except Exception:
                log.exception("%s did not stop cleanly", front_end.name)
        await heartbeat.stop()
        await app.close()
    if failure:
        raise FrontEndFailure(failure)
