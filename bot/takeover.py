"""Melodies a killed process left half-made, finished by the next process on the same platform.

A bot killed mid-melody (kill -9, the OOM killer, a power cut) leaves the melody unsent, pending
or finished but never handed to the platform: the user waits for a reply that never comes and the
melody holds a quota slot. Each melody names the process making it and where its reply goes, and
is marked when the platform takes the reply. A process of the same platform that finds unsent
melodies of a process that is gone (its scratch lock is free: :func:`bot.scratch.is_alive`; on
PostgreSQL, its lock in the database: :meth:`storage.Repository.owner_alive`) takes them over
in one atomic step, composes each again from its stored request and seed (the very
melody the user would have had) or redraws a finished one, and sends it where the first reply
would have gone. A platform that cannot send to a stored address (the console) gives the slots
back instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.app import App
from bot.replies import Delivered, Reply
from bot.scratch import is_alive
from storage import MelodyRecord
from storage.repository import ABANDONED

log = logging.getLogger("melodybot")
SendTo = Callable[[str, Reply, Delivered], Awaitable[None]]  # (reply address, reply, on sent)


async def take_over_interrupted(
    app: App, platform: str, send_to: SendTo | None, audio_format: str = "mp3"
) -> int:
    """Finish and send the unsent melodies of this platform's stopped processes; returns how
    many were delivered. They are all handed to the pool at once, ahead of anyone who asks from
    now on (their users have waited longest). Each failure is logged and its slot given back;
    none stops the rest."""
    owners = await app.repo.unsent_owners(platform)
    gone = sorted([owner for owner in owners if not await _alive(app, owner)])
    taken = []
    for owner in gone:
        taken += await app.repo.take_over(platform, owner, app.scratch.name)
    if taken:
        log.warning(
            "%s: taking over %d melodies a stopped process left unsent", platform, len(taken)
        )
    sent = await asyncio.gather(*(_finish_and_send(app, g, send_to, audio_format) for g in taken))
    return sum(sent)


async def _alive(app: App, owner: str) -> bool:
    """The database knows on PostgreSQL (processes on other machines); on SQLite the
    processes share this machine and their scratch locks tell."""
    alive = await app.repo.owner_alive(owner)
    return is_alive(app.scratch.root, owner) if alive is None else alive


async def _finish_and_send(
    app: App, record: MelodyRecord, send_to: SendTo | None, audio_format: str
) -> bool:
    if send_to is None or record.reply_address is None:
        await app.core.give_back(record, ABANDONED)
        return False
    reply = await app.core.finish_interrupted(record, audio_format)
    if reply is None:  # this process is stopping too: the next one takes over
        return False
    delivered = False

    async def on_delivered() -> None:
        nonlocal delivered
        delivered = True
        await app.core.delivered(reply)

    try:
        await send_to(record.reply_address, reply, on_delivered)
    except Exception as error:
        log.warning("melody #%d could not be sent after a restart: %s", record.id, error)
        if not delivered:
            await app.core.undelivered(reply, f"{type(error).__name__} after a restart")
            return False
    return reply.composed
