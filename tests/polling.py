"""Waiting in a test for what a bot does in its own time (a reply sent, a row updated)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(probe: Callable[[], Any], *, timeout_s: float = 20.0) -> Any:
    """The first truthy value of ``probe()`` (a function or a coroutine function), asked every
    50 ms; the test fails if none comes within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {timeout_s:g} s: {probe}")
        await asyncio.sleep(0.05)


async def failed_melody(repo, melody_id: int):
    """The melody once it has failed (e.g. the platform would not take it), else None."""
    record = await repo.get_melody(melody_id)
    return record if record is not None and record.status == "failed" else None


async def delivered_melody(repo, melody_id: int):
    """The melody once the platform has taken it, else None."""
    record = await repo.get_melody(melody_id)
    return record if record is not None and record.delivered_at is not None else None


async def whole(reply):
    """A reply as the user ends up with it: the picture and audio that follow it added to its
    files, and any line saying one could not be made added to its text."""
    from dataclasses import replace

    if reply is None or reply.follow_ups is None:
        return reply
    made = await reply.follow_ups.gather()
    files = tuple(part for part in made if not isinstance(part, str))
    notes = "".join(f"\n{part}" for part in made if isinstance(part, str))
    return replace(reply, text=reply.text + notes, attachments=reply.attachments + files)
