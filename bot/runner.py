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
from collections.abc import Iterable
from functools import partial

from bot.app import open_app
from bot.config import Settings
from bot.health import Heartbeat
from bot.housekeeping import Housekeeping
from bot.pages.server import PageServer
from bot.platforms import PLATFORMS, FrontEndFailure
from bot.takeover import take_over_interrupted

log = logging.getLogger("melodybot")


async def run_bots(
    settings: Settings,
    platforms: Iterable[str] = tuple(PLATFORMS),
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the front-ends of ``platforms`` that have a token and serve until ``stop`` or a
    signal."""
    app = await open_app(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    wanted = [PLATFORMS[name] for name in platforms]
    front_ends = [p.start_front_end(app) for p in wanted if p.has_token(settings)]
    pages = PageServer(app)
    heartbeat = Heartbeat(settings, [f.name for f in front_ends], routes=pages.routes())
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
