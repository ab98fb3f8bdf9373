"""Running the chat front-ends in one event loop until SIGTERM/SIGINT, then shutting down cleanly.

On a stop signal the front-ends stop taking messages first, melodies in flight finish (bounded by
the pool's drain timeout), and the database is closed last, so nothing is lost on a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

from bot.app import App, open_app
from bot.config import Settings
from bot.health import Heartbeat

log = logging.getLogger("melodybot")


class FrontEnd(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class TelegramFrontEnd:
    name = "telegram"

    def __init__(self, app: App):
        from bot.telegram_bot import build_application

        self.application = build_application(app)

    async def start(self) -> None:
        from bot.telegram_bot import register_commands

        await self.application.initialize()
        await register_commands(self.application)
        await self.application.start()
        await self.application.updater.start_polling(timeout=20, poll_interval=0.0)
        log.info("telegram: polling as @%s", self.application.bot.username)

    async def stop(self) -> None:
        if self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()


class DiscordFrontEnd:
    name = "discord"

    def __init__(self, app: App):
        from bot.discord_bot import MelodyBot

        self.bot = MelodyBot(app)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        token = self.bot.app.settings.discord_token
        assert token is not None
        await self.bot.login(token.get_secret_value())
        self._task = asyncio.create_task(self.bot.connect(reconnect=True), name="discord")
        self._task.add_done_callback(self._report_crash)

    @staticmethod
    def _report_crash(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("discord: the gateway connection died", exc_info=task.exception())

    async def stop(self) -> None:
        await self.bot.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


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
    try:
        for front_end in front_ends:
            await front_end.start()
        await heartbeat.start()
        await stop.wait()
        log.info("stopping: no new messages, finishing melodies in flight")
    finally:
        for front_end in reversed(front_ends):
            try:
                await front_end.stop()
            except Exception:
                log.exception("%s did not stop cleanly", front_end.name)
        await heartbeat.stop()
        await app.close()
