"""Housekeeping while the bot runs: abandoned melodies released, old ones removed.

A melody whose process was killed mid-way stays pending and holds its user's quota slot until
someone marks it failed; retention (``KEEP_LAST_GENERATIONS``, ``KEEP_DAYS``) keeps the database
to its size. Both used to run only at start-up, so a slot stayed taken until the next restart and
a bot that ran for months never forgot a melody. Here they run every few minutes as well; one
failed round is logged and the next one tries again. Each round also takes over the melodies a
stopped process of the same platform left unfinished (:mod:`bot.takeover`), the first round at
once, since their users are waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.config import Settings
from storage.repository import Repository

log = logging.getLogger("melodybot")
# A melody still pending after this long was abandoned: composing and rendering are bounded by
# timeouts far shorter, and a full queue is answered "busy" instead of waiting.
ABANDONED_AFTER_S = 15 * 60.0
STOP_WAIT_S = 10.0  # a melody being taken over when the bot stops gets this long to be sent


class Housekeeping:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        take_overs: Sequence[Callable[[], Awaitable[object]]] = (),
    ):
        self.repo = repo
        self.settings = settings
        self.take_overs = take_overs
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    async def run_once(self) -> tuple[int, int]:
        """(melodies released as abandoned, melodies removed by retention)."""
        released = await self.repo.fail_stale_pending(ABANDONED_AFTER_S)
        if released:
            log.warning(
                "released %d abandoned melodies (pending for over %.0f s)",
                released,
                ABANDONED_AFTER_S,
            )
        removed = 0
        if self.settings.keep_last_generations or self.settings.keep_days:
            removed = await self.repo.apply_retention(
                self.settings.keep_last_generations, self.settings.keep_days
            )
            if removed:
                log.info("retention: removed %d old melodies", removed)
        return released, removed

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="housekeeping")

    async def _loop(self) -> None:
        every = self.settings.housekeeping_every_s
        while True:
            for take_over in self.take_overs:
                try:
                    await take_over()
                except Exception:
                    log.exception("taking over unfinished melodies failed; again in %.0f s", every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), every)
            if self._stopping.is_set():
                return
            try:
                await self.run_once()
            except Exception:
                log.exception("housekeeping failed; trying again in %.0f s", every)

    async def stop(self) -> None:
        """Let a melody being taken over be sent (bounded), then stop."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_S)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
