"""The chat platforms the bot serves: each lives in one adapter module whose front-end class
is named here, so a new platform is its adapter file plus one line below (and its token in
:class:`~bot.config.Settings`); the runner and the command line start whatever is listed.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.replies import Delivered, Reply

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings


class FrontEndFailure(RuntimeError):
    """A front-end cannot run or lost its platform for good; the message says what to fix and
    never holds a secret."""


class FrontEnd(Protocol):
    """What the runner needs of a platform's front-end; ``__init__(app)`` builds it."""

    name: str
    audio_format: str  # the audio preview the platform plays best (see Incoming.audio_format)
    gone: asyncio.Future[str]  # set, with what happened, once the platform connection is lost

    async def start(self) -> None: ...

    async def stop_intake(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_to(self, address: str, reply: Reply, on_delivered: Delivered) -> None:
        """Send a reply to a stored address (what :class:`~bot.core.Incoming` carried), and
        its follow-ups after ``on_delivered``."""


@dataclass(frozen=True)
class Platform:
    name: str
    front_end: str  # "module:Class"; imported only when the platform is started
    token_variable: str  # where an operator puts its token

    def has_token(self, settings: Settings) -> bool:
        return getattr(settings, f"{self.name}_token", None) is not None

    def start_front_end(self, app: App) -> FrontEnd:
        module, _, name = self.front_end.partition(":")
        return getattr(importlib.import_module(module), name)(app)


PLATFORMS = {
    platform.name: platform
    for platform in (
        Platform("telegram", "bot.telegram_bot:TelegramFrontEnd", "TELEGRAM_TOKEN"),
        Platform("discord", "bot.discord_bot:DiscordFrontEnd", "DISCORD_TOKEN"),
    )
}
