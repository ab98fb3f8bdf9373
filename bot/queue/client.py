"""The front-end's side of the queue: jobs put in PostgreSQL, their results awaited by key.

:class:`QueuedJobs` answers as :class:`~bot.workers.WorkerPool` does, so the composer and the
pages neither know nor care where the work runs. A result arrives by ``LISTEN``/``NOTIFY`` the
moment a worker stores it, and a poll each second picks up any whose notice was missed (a
dropped connection). A front-end admits melodies only while some worker is alive: with none, a
user hears "busy, try again" at once instead of waiting on a queue nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import pickle
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import procrastinate
import psycopg

from bot.queue.shared import (
    HEARTBEAT_S,
    QUEUE,
    RESULTS_CHANNEL,
    STALLED_AFTER_S,
    TASK,
    encode,
    ensure_schema,
    queue_app,
)
from bot.workers import JobKind, JobTimedOut, MelodyPlaces, ShuttingDown

log = logging.getLogger("melodybot.queue")
POLL_S = 1.0
WORKERS_SEEN_EVERY_S = 2.0


class QueuedJobs(MelodyPlaces):
    """Jobs for ``melodybot worker`` processes anywhere, through the bot's PostgreSQL."""

    def __init__(self, url: str, owner: str, queue_size: int = 20):
        self.url = url
        self.owner = owner
        self.queue_size = queue_size
        self.jobs_done: Counter[str] = Counter()
        self._app: procrastinate.App | None = None
        self._melodies = 0
        self._waiting: dict[str, tuple[asyncio.Future, JobKind, int | None]] = {}
        self._seconds_per_job: dict[str, deque[float]] = {}
        self._workers_alive = 0
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._refused: set[JobKind] = set()

    # admission ------------------------------------------------------------------------------

    @property
    def workers(self) -> int:
        """Workers alive now, by their heartbeats (refreshed every two seconds)."""
        return self._workers_alive

    def is_full(self) -> bool:
        return self._workers_alive == 0 or self._melodies >= self._workers_alive + self.queue_size

    def wait_estimate_s(self) -> float:
        workers = max(1, self._workers_alive)
        if self._workers_alive == 0:  # nobody to do the work: ask again once one has started
            return max(30.0, self.typical_melody_seconds())
        return math.ceil(self._melodies / workers + 1) * self.typical_melody_seconds()

    # running --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._app is not None:
            return
        await ensure_schema(self.url)
        self._app = queue_app(self.url)
        await self._app.open_async()
        await self._count_workers()
        self._tasks = [
            asyncio.create_task(self._listen(), name="queue-results"),
            asyncio.create_task(self._poll(), name="queue-poll"),
            asyncio.create_task(self._watch_workers(), name="queue-workers"),
        ]
        log.info("jobs go to the PostgreSQL queue; %d workers alive", self._workers_alive)

    def _deadline_s(self, kind: JobKind) -> float:
        """How long to wait for one job: its own time limit, the queue ahead of it, and time
        for a stalled worker's jobs to be noticed and run again."""
        return 2 * kind.timeout_s + self.wait_estimate_s() + 3 * STALLED_AFTER_S

    async def run(self, kind: JobKind, payload: object) -> Any:
        if self._closed or kind in self._refused:
            raise ShuttingDown()
        if self._app is None:
            await self.start()
        assert self._app is not None
        key = f"{self.owner}-{uuid.uuid4().hex}"  # the idempotency key: one result, one reply
        future = asyncio.get_running_loop().create_future()
        self._waiting[key] = (future, kind, None)
        started = time.monotonic()
        try:
            job_id = await self._app.configure_task(
                TASK, queue=QUEUE, priority=-kind.priority
            ).defer_async(kind=kind.name, key=key, payload=encode((kind, payload)))
            if not future.done():
                self._waiting[key] = (future, kind, job_id)
            try:
                status, value = await asyncio.wait_for(future, self._deadline_s(kind))
            except TimeoutError:
                await self._cancel(job_id)
                raise JobTimedOut(f"no worker finished the {kind.name} job in time") from None
        finally:
            self._waiting.pop(key, None)
        self.jobs_done[kind.name] += 1
        self._timed(kind, time.monotonic() - started)
        if status == "error":
            raise value
        return value

    async def _cancel(self, job_id: int | None) -> bool:
        """Take a job that no worker has started off the queue; False if one has."""
        if job_id is None or self._app is None:
            return False
        try:
            return await self._app.job_manager.cancel_job_by_id_async(job_id, delete_job=True)
        except Exception as error:  # gone already, or the database is away: nothing to undo
            log.debug("could not cancel job %s: %s", job_id, error)
            return False

    async def _take(self, keys: Sequence[str]) -> None:
        """Settle the waiting callers whose results are in (each result is taken once)."""
        keys = [k for k in keys if k in self._waiting]
        if not keys or self._app is None:
            return
        rows = await self._app.connector.execute_query_all_async(
            """UPDATE melodybot_job_results r
               SET outcome = NULL, taken_at = extract(epoch FROM clock_timestamp())
               FROM (SELECT key, outcome FROM melodybot_job_results
                     WHERE key = ANY(%(keys)s) AND taken_at IS NULL FOR UPDATE) AS found
               WHERE r.key = found.key
               RETURNING found.key, found.outcome""",
            keys=list(keys),
        )
        for row in rows:
            waiting = self._waiting.get(row["key"])
            if waiting is not None and not waiting[0].done():
                waiting[0].set_result(pickle.loads(row["outcome"]))

    async def _listen(self) -> None:
        """Results the moment they are stored; reconnects after a lost connection."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {RESULTS_CHANNEL}")
                    await self._take(list(self._waiting))  # what came while not listening
                    async for notice in connection.notifies():
                        if notice.payload in self._waiting:
                            await self._take([notice.payload])
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("the queue's result notices stopped (%s); listening again", error)
                await asyncio.sleep(1.0)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            with contextlib.suppress(Exception):  # the listener logs a lost database
                await self._take(list(self._waiting))

    async def _count_workers(self) -> None:
        assert self._app is not None
        row = await self._app.connector.execute_query_one_async(
            """SELECT count(*) AS n FROM procrastinate_workers
               WHERE last_heartbeat > now() - make_interval(secs => %(stalled)s)""",
            stalled=STALLED_AFTER_S,
        )
        self._workers_alive = int(row["n"])

    async def _watch_workers(self) -> None:
        while True:
            await asyncio.sleep(min(WORKERS_SEEN_EVERY_S, HEARTBEAT_S))
            try:
                await self._count_workers()
            except Exception as error:
                log.debug("could not count the workers: %s", error)

    # stopping -------------------------------------------------------------------------------

    async def drain(self, timeout_s: float, *, cancel: Sequence[JobKind] = ()) -> bool:
        """As :meth:`bot.workers.WorkerPool.drain`: jobs of the ``cancel`` kinds that no worker
        has started are taken off the queue (their callers get ShuttingDown); the rest may
        finish within ``timeout_s``."""
        self._closed = True
        self._refused.update(cancel)
        for future, kind, job_id in list(self._waiting.values()):
            if kind in cancel and await self._cancel(job_id) and not future.done():
                future.set_exception(ShuttingDown())
        deadline = time.monotonic() + timeout_s
        while self._waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        finished = not self._waiting
        await self.close()
        return finished

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for future, _kind, _job in self._waiting.values():
            if not future.done():
                future.set_exception(ShuttingDown())
        if self._app is not None:
            app, self._app = self._app, None
            await app.close_async()

    def worker_pids(self) -> list[int]:
        """None here: the workers are other processes, perhaps on other machines."""
        return []
