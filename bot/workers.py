"""A bounded pool for model and render work, shared by every chat.

The event loop never runs model code: work goes to a few threads, and at most ``queue_size``
requests wait for them. When the queue is full the caller learns at once, with an estimate of how
long the wait would be, so users hear "busy, try in ~20 s" instead of silence.

On shutdown the pool stops at once: what waits for a worker is cancelled (its caller gets
:class:`ShuttingDown` and can give the user's slot back and say so), and only what already runs
is waited for, within a bound, so a stop under load takes seconds, not the whole queue's time.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
DEFAULT_JOB_SECONDS = 2.0  # until the pool has timed real jobs


class QueueFull(Exception):
    def __init__(self, wait_estimate_s: float):
        self.wait_estimate_s = wait_estimate_s
        super().__init__(f"queue full, about {wait_estimate_s:.0f} s of work ahead")


class ShuttingDown(Exception):
    """The job never ran: the bot is stopping."""


class WorkerPool:
    def __init__(self, workers: int = 2, queue_size: int = 20):
        self.workers = workers
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="melody")
        self._admitted = 0
        self._durations: deque[float] = deque(maxlen=50)
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        return self._admitted

    def is_full(self) -> bool:
        """Every worker busy and every queue place taken: a new job would be refused."""
        return self._admitted >= self.workers + self.queue_size

    def typical_job_seconds(self) -> float:
        return statistics.median(self._durations) if self._durations else DEFAULT_JOB_SECONDS

    def wait_estimate_s(self, position: int | None = None) -> float:
        """Seconds until a job admitted now would finish: queue depth over workers, times a job."""
        ahead = self._admitted if position is None else position
        return math.ceil(ahead / self.workers + 1) * self.typical_job_seconds()

    async def run(self, function: Callable[..., T], *args: object, admitted: bool = False) -> T:
        """Run ``function(*args)`` on a worker thread; raises QueueFull when too many wait and
        ShuttingDown when the pool stops before the job starts. An ``admitted`` job was let in
        before (a melody a stopped process left): it never meets a full queue, or its user,
        who has waited longest, would wait behind everyone who came after."""
        if self._closed:
            raise ShuttingDown()
        if self.is_full() and not admitted:
            raise QueueFull(self.wait_estimate_s())
        self._admitted += 1
        self._idle.clear()

        def timed() -> T:  # service time only, not the time spent waiting for a thread
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                self._durations.append(time.perf_counter() - started)

        job = self._executor.submit(timed)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if job.cancelled() and self._closed:  # cancelled by drain(), before it started
                raise ShuttingDown() from None
            raise
        finally:
            self._admitted -= 1
            if self._admitted == 0:
                self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        """Stop taking work, cancel what has not started, and wait (bounded) for what runs;
        True if everything finished."""
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=False, cancel_futures=True)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
