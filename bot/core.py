"""The one entry point of every chat command, independent of any platform.

A front-end turns a platform event into an :class:`~bot.incoming.Incoming` message and sends
back the :class:`~bot.replies.Reply` this core returns. The core finds the command (through the
grammar and :mod:`bot.registry`), lets only moderators reach moderators' commands, hands the
handler its :class:`~bot.context.Context`, and turns every mistake into a friendly answer:
nothing a user types raises out of :meth:`BotCore.handle`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from bot.commands import CommandError, parse_command
from bot.composer import Composer
from bot.config import Settings
from bot.context import ComposeContext, Context, Services, WorkStarted
from bot.incoming import Incoming
from bot.refusals import DISK_FULL, RESTARTING
from bot.replies import Reply
from generator.request import RequestError
from storage import MelodyRecord, Repository, StorageFull

log = logging.getLogger("melodybot")

ModeratorCheck = Callable[[], Awaitable[bool]]
REFUSALS_PER_MINUTE = 3  # error and refusal replies one user gets in one chat

__all__ = ["BotCore", "Incoming", "ModeratorCheck", "RateLimit"]


class RateLimit:
    """At most ``count`` events per key in any ``window_s``; kept in memory, as it only spares
    the chat from repeated complaints (quotas and cooldowns live in the database)."""

    def __init__(self, count: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.count, self.window_s, self.clock = count, window_s, clock
        self._times: dict[tuple[str, ...], list[float]] = {}

    def allow(self, key: tuple[str, ...]) -> bool:
        now = self.clock()
        if len(self._times) > 10_000:  # forget users who have been quiet for a window
            self._times = {k: v for k, v in self._times.items() if now - v[-1] < self.window_s}
        recent = [t for t in self._times.get(key, ()) if now - t < self.window_s]
        if len(recent) >= self.count:
            return False
        self._times[key] = [*recent, now]
        return True


async def _nobody_moderates() -> bool:
    return False


class BotCore:
    def __init__(self, settings: Settings, repository: Repository, composer: Composer):
        self.settings = settings
        self.repo = repository
        self.composer = composer
        self.services = Services(settings, repository, composer)
        self.stopping = False  # set on shutdown: new commands are told to come back shortly
        self._refusals = RateLimit(REFUSALS_PER_MINUTE, 60.0)
        self.prefixes = tuple(dict.fromkeys((settings.prefix, "/")))

    async def handle(
        self,
        message: Incoming,
        *,
        is_moderator: ModeratorCheck = _nobody_moderates,
        on_work_started: WorkStarted | None = None,
        bot_username: str | None = None,
    ) -> Reply | None:
        """The reply to one message, or None when the message is not for the bot, or when it is
        one refusal too many: a user who keeps sending mistakes (or asking too fast) hears about
        it a few times a minute, so one user cannot spend a group's message allowance."""
        reply = await self._answer(message, is_moderator, on_work_started, bot_username)
        key = (message.platform, message.chat_id, message.user_id)
        if reply is not None and reply.refusal and not self._refusals.allow(key):
            return None
        return reply

    async def _answer(
        self,
        message: Incoming,
        is_moderator: ModeratorCheck,
        on_work_started: WorkStarted | None,
        bot_username: str | None,
    ) -> Reply | None:
        shown = message.shown_prefix or self.settings.prefix
        try:
            command = parse_command(message.text, self.prefixes, bot_username)
            if command is None:
                return None
            if self.stopping:
                return RESTARTING
            spec = command.spec
            if spec.moderator and not await self._moderates(message, is_moderator):
                return Reply(
                    f"Sorry, {shown}{spec.name} is for moderators of this chat.",
                    private=True,
                    refusal=True,
                )
            context = (
                ComposeContext(message, command.argument, self.services, on_work_started)
                if spec.composes
                else Context(message, command.argument, self.services)
            )
            return await spec.handler(context)
        except RequestError as error:
            example = f"{shown}melody {error.example}"
            return Reply(f"{error.problem} Try: {example}", private=True, refusal=True)
        except CommandError as error:
            return Reply(str(error), private=True, refusal=True)
        except StorageFull as full:
            log.error("cannot save: %s", full)
            return DISK_FULL
        except Exception:
            incident = uuid.uuid4().hex[:8]
            log.exception(
                "request %s failed: %r from %s", incident, message.text[:200], message.platform
            )
            return Reply(
                f"Sorry, something went wrong on my side (incident {incident}). "
                "Please try again in a moment.",
                private=True,
            )

    async def _moderates(self, message: Incoming, is_moderator: ModeratorCheck) -> bool:
        return message.user_id in self.settings.moderator_ids or await is_moderator()

    # what became of a reply ----------------------------------------------------------------

    async def delivered(self, reply: Reply) -> None:
        """The platform took a reply: a melody composed for it is the user's now, and nothing is
        left for another process to send should this one die."""
        if not reply.composed or reply.melody_id is None:
            return
        try:
            await self.repo.mark_delivered(reply.melody_id)
        except Exception as error:  # the user has the melody; at stake is a re-send after a crash
            log.warning("melody #%d: could not note its delivery: %s", reply.melody_id, error)

    async def undelivered(self, reply: Reply, why: str) -> None:
        """The platform would not take a reply: a melody composed for it gives its slot back."""
        if not reply.composed or reply.melody_id is None:
            return
        if await self.repo.release_undelivered(reply.melody_id, f"not delivered: {why}"):
            log.warning("melody #%d not delivered (%s); its slot is free", reply.melody_id, why)

    # melodies a stopped process left ------------------------------------------------------

    async def finish_interrupted(
        self, record: MelodyRecord, audio_format: str = "mp3"
    ) -> Reply | None:
        return await self.composer.finish_interrupted(record, audio_format)

    async def give_back(self, record: MelodyRecord, why: str) -> None:
        await self.composer.give_back(record, why)
