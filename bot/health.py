"""Liveness for container health checks: a heartbeat file and, optionally, a tiny HTTP endpoint.

The heartbeat file holds the time of the last beat; ``melodybot health`` exits 0 while it is fresh,
so a Docker HEALTHCHECK needs neither curl nor an open port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import Settings

log = logging.getLogger("melodybot")
BEAT_EVERY_S = 10.0
STALE_AFTER_S = 60.0


class Heartbeat:
    def __init__(self, settings: Settings, front_ends: list[str], routes: Sequence = ()):
        """``routes`` (aiohttp route definitions: the melody pages) are served beside
        ``/health`` on the health port."""
        self.path = settings.heartbeat_file
        self.port = settings.health_port
        self.front_ends = front_ends
        self.routes = list(routes)
        self.started = time.time()
        self._task: asyncio.Task | None = None
        self._runner = None

    def status(self) -> dict[str, object]:
        return {
            "status": "ok",
            "front_ends": self.front_ends,
            "time": time.time(),
            "uptime_s": round(time.time() - self.started),
        }

    async def start(self) -> None:
        if self.path is not None:
            self._task = asyncio.create_task(self._beat(), name="heartbeat")
        if self.port is not None:
            from aiohttp import web

            async def health(_request: web.Request) -> web.Response:
                return web.json_response(self.status())

            web_app = web.Application()
            web_app.router.add_get("/health", health)
            web_app.add_routes(self.routes)
            self._runner = web.AppRunner(web_app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "0.0.0.0", self.port).start()
            self.port = self._runner.addresses[0][1]  # the one given, or the one chosen for 0
            log.info("health endpoint on port %d", self.port)

    async def _beat(self) -> None:
        """Beat until stopped. A beat that cannot be written (a full disk) is logged once, its
        half-written file removed, and the beats resume by themselves when writing works again:
        the heartbeat goes stale meanwhile, which is the truth."""
        assert self.path is not None
        failing = False
        while True:
            tmp = self.path.with_suffix(".tmp")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(self.status()))
                tmp.replace(self.path)
                if failing:
                    log.info("heartbeat written again")
                failing = False
            except OSError as error:
                if not failing:
                    log.error("cannot write the heartbeat %s: %s", self.path, error.strerror)
                failing = True
                with contextlib.suppress(OSError):
                    tmp.unlink()
            await asyncio.sleep(BEAT_EVERY_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # never let the heartbeat's trouble stop the database closing
                log.exception("the heartbeat had stopped with an error")
            with contextlib.suppress(OSError):
                self.path.unlink()  # a stopped bot is not alive
        if self._runner is not None:
            await self._runner.cleanup()


def is_alive(path: Path, now: float | None = None) -> tuple[bool, str]:
    """Whether the heartbeat file is fresh, and a line saying so."""
    try:
        beat = json.loads(path.read_text())
    except (OSError, ValueError):
        return False, f"no heartbeat at {path}"
    age = (now or time.time()) - float(beat.get("time", 0))
    if age > STALE_AFTER_S:
        return False, f"last heartbeat {age:.0f} s ago"
    return (
        True,
        f"alive: {', '.join(beat.get('front_ends', [])) or 'no front-end'}, beat {age:.0f} s ago",
    )
