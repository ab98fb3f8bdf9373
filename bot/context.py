"""What a command's handler is given: the message, its argument text and the bot's services."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands import CommandError
from bot.config import Settings
from bot.incoming import Incoming
from storage import Repository, User

if TYPE_CHECKING:
    from bot.composer import Composer

log = logging.getLogger("melodybot")
WorkStarted = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Services:
    """The long-lived parts every handler may use; one per bot process."""

    settings: Settings
    repo: Repository
    composer: Composer


@dataclass(frozen=True)
class Context:
    message: Incoming
    argument: str
    services: Services

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def repo(self) -> Repository:
        return self.services.repo

    @property
    def scope(self) -> tuple[str, str]:
        """The chat the message came from, as limits and bans name it."""
        return self.message.platform, self.message.chat_id

    @property
    def actor(self) -> str:
        """Who did it, as the audit log keeps it."""
        return f"{self.message.user_name} ({self.message.user_id})"

    @property
    def prefix(self) -> str:
        """How replies write a command for this user (``!``, or ``/`` on Discord's slash)."""
        return self.message.shown_prefix or self.settings.prefix

    def example(self, command_line: str) -> str:
        """A command as this user types it: ``example("history 5")`` → ``!history 5``."""
        return f"{self.prefix}{command_line}"

    async def user(self) -> User:
        """The sender, recorded (or their name brought up to date)."""
        message = self.message
        return await self.repo.upsert_user(message.platform, message.user_id, message.user_name)

    def count(self, *, default: int, high: int, example: str) -> int:
        """The argument read as a count from 1 to ``high`` (``default`` when there is none)."""
        text = self.argument.strip()
        if not text:
            return default
        if not text.isdecimal() or not 1 <= int(text) <= high:
            raise CommandError(f"Give a number from 1 to {high}.", self.example(example))
        return int(text)


@dataclass(frozen=True)
class ComposeContext(Context):
    """A composing command's context: it can tell the platform that work has begun."""

    on_work_started: WorkStarted | None = None

    async def work_started(self) -> None:
        """Typing…, a deferred interaction: a courtesy, so its failure (a 403 on Discord's
        typing) is logged and the melody made all the same."""
        if self.on_work_started is None:
            return
        try:
            await self.on_work_started()
        except Exception as error:
            log.warning("could not show that work began: %s", error)
