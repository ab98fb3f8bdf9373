"""A pool of worker processes for model and render work, shared by every chat.

Sampling, music21 and the loudness maths are Python work that holds the GIL: threads would share
one core between them, processes use every core. Each worker process runs the pool's setup once
(the melody workers load the model and the soundfont there), then runs the jobs it is sent over a
pipe. The event loop only parses, stores and sends.

Jobs wait in one queue ordered by their kind's priority, so a melody still to compose goes ahead
of the pictures and audio of melodies already sent, and a new request never waits behind other
users' audio. Waiting jobs of one kind are taken together, up to the kind's batch size: fifty
melodies asked at once are sampled as one batch, several scores are drawn by one MuseScore.

A job that crashes its worker or runs past its kind's time limit costs that worker (it is killed
and replaced), never the pool or the bot; the jobs that shared its batch are tried again one by
one, so a bad job fails alone.

At most ``workers + queue_size`` melodies are in hand at once, from admission until their last
picture is sent (:meth:`WorkerPool.admit`); past that the caller learns at once, with an estimate
of the wait, so users hear "busy, try in ~20 s" instead of silence. On shutdown the pool stops
taking melodies, cancels those still waiting (their callers get :class:`ShuttingDown`), lets what
runs finish within a bound and then stops its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import importlib
import itertools
import logging
import math
import multiprocessing
import os
import select
import signal
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from multiprocessing.connection import Connection
from typing import Any, Protocol

log = logging.getLogger("melodybot.workers")
DEFAULT_MELODY_SECONDS = 0.5  # until the pool has timed real jobs
STOP_WORKER_S = 2.0  # how long a worker may take to leave once told to
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the bot's own (melodybot/logs.py)


class QueueFull(Exception):
    def __init__(self, wait_estimate_s: float):
        self.wait_estimate_s = wait_estimate_s
        super().__init__(f"queue full, about {wait_estimate_s:.0f} s of work ahead")


class ShuttingDown(Exception):
    """The job never ran: the bot is stopping."""


class WorkerCrashed(Exception):
    """The worker process running the job died (a crash in a native library, the OOM killer)."""


class JobTimedOut(Exception):
    """The job ran past its kind's time limit; its worker was stopped."""


@dataclass(frozen=True)
class JobKind:
    """A kind of work: the function a worker runs (``"module:function"``, called with a list of
    payloads and returning one result per payload; a result that is an exception fails that
    payload alone), its priority (lower first), how many waiting jobs one call may take, and
    how long one call may run before its worker is stopped."""

    name: str
    function: str
    priority: int
    batch: int = 1
    timeout_s: float = 60.0


@dataclass(order=True)
class _Job:
    priority: int
    sequence: int
    kind: JobKind = field(compare=False)
    payload: object = field(compare=False)
    future: asyncio.Future = field(compare=False)
    alone: bool = field(default=False, compare=False)  # retried on its own after a crash


class Admission:
    """One melody's place in the pool, held from admission until its last job is done.

    Used as ``with admission:``, the place goes back when the block ends, however it ends,
    unless the block hands it on (to the jobs that finish the melody) with :meth:`hand_over`."""

    def __init__(self, pool: MelodyPlaces):
        self._pool: MelodyPlaces | None = pool
        self._handed_over = False

    def release(self) -> None:
        if self._pool is not None:
            self._pool._melodies -= 1
            self._pool = None

    def hand_over(self) -> Callable[[], None]:
        """Keep the place past the ``with`` block; calling what is returned gives it back."""
        self._handed_over = True
        return self.release

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._handed_over:
            self.release()


class MelodyPlaces:
    """Counting the melodies a job runner has in hand, for :class:`WorkerPool` and the queue's
    :class:`~bot.queue.client.QueuedJobs` alike: each says when it is full and how long a wait
    would be; admitting, and the typical cost of a melody, are the same for both."""

    _melodies: int
    _closed: bool
    _seconds_per_job: dict[str, deque[float]]

    def is_full(self) -> bool:
        raise NotImplementedError

    def wait_estimate_s(self) -> float:
        raise NotImplementedError

    @property
    def pending(self) -> int:
        """Melodies in hand: waiting, being composed, or with pictures and audio still to come."""
        return self._melodies

    def admit(self, *, admitted: bool = False) -> Admission:
        """A place for one melody; raises QueueFull when every place is taken and ShuttingDown
        once stopped. An ``admitted`` melody was let in before (one a stopped process left): it
        never meets a full queue, or its user, who has waited longest, would wait behind
        everyone who came after."""
        if self._closed:
            raise ShuttingDown()
        if self.is_full() and not admitted:
            raise QueueFull(self.wait_estimate_s())
        self._melodies += 1
        return Admission(self)

    def typical_melody_seconds(self) -> float:
        """Seconds one melody's jobs take, every kind it needs together."""
        if not self._seconds_per_job:
            return DEFAULT_MELODY_SECONDS
        return sum(statistics.median(times) for times in self._seconds_per_job.values())

    def _timed(self, kind: JobKind, seconds: float) -> None:
        self._seconds_per_job.setdefault(kind.name, deque(maxlen=50)).append(seconds)


class JobRunner(Protocol):
    """What the composer and the pages ask of whatever runs the jobs: this process's own
    :class:`WorkerPool`, or :class:`bot.queue.client.QueuedJobs` for workers elsewhere."""

    jobs_done: Counter[str]

    @property
    def pending(self) -> int: ...
    def is_full(self) -> bool: ...
    def admit(self, *, admitted: bool = False) -> Admission: ...
    def wait_estimate_s(self) -> float: ...
    async def start(self) -> None: ...
    async def run(self, kind: JobKind, payload: object) -> Any: ...
    async def drain(self, timeout_s: float, *, cancel: Sequence[JobKind] = ()) -> bool: ...
    async def close(self) -> None: ...
    def worker_pids(self) -> list[int]: ...


class WorkerPool(MelodyPlaces):
    def __init__(
        self,
        workers: int = 2,
        queue_size: int = 20,
        *,
        setup: tuple[str, object] | None = None,
    ):
        self.workers = workers
        self.queue_size = queue_size
        self._setup = setup
        self._queue: list[_Job] = []
        self._sequence = itertools.count()
        self._work_waiting = asyncio.Event()
        self._melodies = 0
        self._running = 0
        self._seconds_per_job: dict[str, deque[float]] = {}
        self.jobs_done: Counter[str] = Counter()  # by kind, for the health check and the tests
        self._slots: list[_WorkerSlot] = []
        self._serving: list[asyncio.Task] = []
        self._closed = False
        self._refused: set[JobKind] = set()  # kinds no longer taken: the pool is stopping

    # admission --------------------------------------------------------------------------------

    def is_full(self) -> bool:
        """A melody admitted now would be refused."""
        return self._melodies >= self.workers + self.queue_size

    def wait_estimate_s(self) -> float:
        """Seconds until a melody admitted now would be done: the melodies ahead shared among
        the workers, plus its own."""
        ahead = self._melodies
        return math.ceil(ahead / self.workers + 1) * self.typical_melody_seconds()

    # running jobs -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker processes and run their setup; idempotent."""
        if self._slots:
            return
        context = _context()
        self._slots = [_WorkerSlot(context, self._setup, n) for n in range(self.workers)]
        await asyncio.gather(*(slot.ensure_started() for slot in self._slots))
        self._serving = [
            asyncio.create_task(self._serve(slot), name=f"worker-{slot.number}")
            for slot in self._slots
        ]

    async def run(self, kind: JobKind, payload: object) -> Any:
        """Run one job on a worker process and return its result. A job that arrives once the
        pool stops raises ShuttingDown; so does one still waiting when the pool stops."""
        if (self._closed and not self._serving) or kind in self._refused:
            raise ShuttingDown()
        if not self._slots:
            await self.start()
        future = asyncio.get_running_loop().create_future()
        self._enqueue(_Job(kind.priority, next(self._sequence), kind, payload, future))
        return await future

    def _enqueue(self, job: _Job) -> None:
        heapq.heappush(self._queue, job)
        self._work_waiting.set()

    def _take_batch(self) -> list[_Job]:
        """The most urgent waiting job and those of its kind behind it, up to the batch size."""
        while self._queue and self._queue[0].future.done():  # its caller gave up
            heapq.heappop(self._queue)
        if not self._queue:
            self._work_waiting.clear()  # or the workers would spin on a set event
            return []
        first = heapq.heappop(self._queue)
        batch = [first]
        while (
            not first.alone
            and len(batch) < first.kind.batch
            and self._queue
            and self._queue[0].kind == first.kind
            and not self._queue[0].alone
        ):
            job = heapq.heappop(self._queue)
            if not job.future.done():
                batch.append(job)
        if not self._queue:
            self._work_waiting.clear()
        return batch

    async def _serve(self, slot: _WorkerSlot) -> None:
        while True:
            await self._work_waiting.wait()
            batch = self._take_batch()
            if not batch:
                continue
            self._running += 1
            try:
                await self._run_batch(slot, batch)
            finally:
                self._running -= 1

    async def _run_batch(self, slot: _WorkerSlot, batch: list[_Job]) -> None:
        kind = batch[0].kind
        started = time.perf_counter()
        try:
            results = await slot.call(kind, [job.payload for job in batch])
        except asyncio.CancelledError:  # the pool is closing: nobody waits for this forever
            for job in batch:
                _settle(job.future, ShuttingDown())
            raise
        except (WorkerCrashed, JobTimedOut) as failure:
            log.error("%s job of %d failed: %s", kind.name, len(batch), failure)
            if len(batch) > 1:  # one of them did it: each is tried again on its own
                for job in batch:
                    job.alone = True
                    self._enqueue(job)
            else:
                _settle(batch[0].future, failure)
            return
        except Exception as error:  # the whole call failed in the worker
            for job in batch:
                _settle(job.future, error)
            return
        per_job = (time.perf_counter() - started) / len(batch)
        self.jobs_done[kind.name] += len(batch)
        self._timed(kind, per_job)
        for job, result in zip(batch, results, strict=True):
            _settle(job.future, result)

    # stopping ---------------------------------------------------------------------------------

    async def drain(self, timeout_s: float, *, cancel: Sequence[JobKind] = ()) -> bool:
        """Take no new melodies, refuse and cancel the jobs of the ``cancel`` kinds (their callers
        get ShuttingDown), let the rest finish within ``timeout_s``, then stop the workers;
        True if everything finished."""
        self._closed = True
        self._refused.update(cancel)
        kept = []
        for job in self._queue:
            if job.kind in cancel:
                _settle(job.future, ShuttingDown())
            else:
                kept.append(job)
        self._queue = kept
        heapq.heapify(self._queue)
        deadline = time.monotonic() + timeout_s
        while (self._queue or self._running) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        finished = not self._queue and not self._running
        for job in self._queue:
            _settle(job.future, ShuttingDown())
        self._queue.clear()
        await self.close()
        return finished

    async def close(self) -> None:
        """Stop the workers now; what runs is abandoned (its caller gets ShuttingDown)."""
        self._closed = True
        for task in self._serving:
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)
        self._serving = []
        await asyncio.gather(*(slot.stop() for slot in self._slots))
        for job in self._queue:
            _settle(job.future, ShuttingDown())
        self._queue.clear()

    def worker_pids(self) -> list[int]:
        """The worker processes alive now (for the health check and the tests)."""
        return [slot.pid for slot in self._slots if slot.pid is not None]


def _settle(future: asyncio.Future, result: object) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


# one worker process, seen from the bot -----------------------------------------------------


class _WorkerSlot:
    """One worker process and its pipe; a process that dies or hangs is replaced on the next
    call."""

    def __init__(self, context, setup: tuple[str, object] | None, number: int):
        self.context = context
        self.setup = setup
        self.number = number
        self.process: multiprocessing.process.BaseProcess | None = None
        self.connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.is_alive() else None

    async def ensure_started(self) -> None:
        if self.process is not None and self.process.is_alive():
            return
        self._forget()
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=serve_jobs,
            args=(theirs, self.setup, os.getpid(), logging.getLogger().getEffectiveLevel()),
            name=f"melodybot-worker-{self.number}",
        )
        await asyncio.to_thread(process.start)
        theirs.close()
        self.process, self.connection = process, ours
        ready = await asyncio.to_thread(_receive, ours)  # the setup is done
        if ready is None:
            raise WorkerCrashed(f"worker {self.number} died during its setup")
        if isinstance(ready, BaseException):
            raise ready

    async def call(self, kind: JobKind, payloads: list[object]) -> list[object]:
        await self.ensure_started()
        connection = self.connection
        assert connection is not None
        connection.send((kind.function, payloads))
        receiving = asyncio.ensure_future(asyncio.to_thread(_receive, connection))
        try:
            answer = await asyncio.wait_for(asyncio.shield(receiving), kind.timeout_s)
        except TimeoutError:
            self._kill()
            await receiving  # returns once the pipe closes
            raise JobTimedOut(f"{kind.name} ran past {kind.timeout_s:g} s") from None
        except asyncio.CancelledError:  # the pool is closing: this worker's job is abandoned
            self._kill()
            await asyncio.gather(receiving, return_exceptions=True)
            raise
        if answer is None:
            code = self.process.exitcode if self.process is not None else None
            self._kill()
            raise WorkerCrashed(f"the worker process died (exit code {code})")
        status, value = answer
        if status == "error":
            raise value
        return value

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.send(None)  # leave once idle
        process = self.process
        await asyncio.to_thread(process.join, STOP_WORKER_S)
        self._kill()

    def _kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(STOP_WORKER_S)
        self._forget()

    def _forget(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.process, self.connection = None, None


def _receive(connection: Connection) -> object | None:
    """The next message, or None once the other end is gone."""
    try:
        return connection.recv()
    except (EOFError, OSError):
        return None


@cache
def _context():
    """Workers fork from a small server process that has already imported the melody code, so
    a new worker is ready in a fraction of a second, and no worker inherits the bot's threads
    (forking a process with threads can deadlock)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bot.jobs"])
    return context


# inside a worker process ---------------------------------------------------------------------


def _leave_with(bot_pid: int) -> None:
    """End this worker the moment the bot process ends, even mid-job. Its parent is the fork
    server, not the bot, and the fork server stays while any worker does, so neither a parent
    death signal nor the pipe (read only between jobs) would do; a pidfd becomes readable when
    the process it names exits. The tools a job started die with the worker (see
    :func:`generator.render.tools.die_with_parent`)."""
    try:
        watched = os.pidfd_open(bot_pid)
    except ProcessLookupError:  # gone already
        os._exit(0)
    except (AttributeError, OSError):  # no pidfds here: an idle worker still leaves at EOF
        return

    def watch() -> None:
        select.select([watched], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="bot-watch", daemon=True).start()


@cache
def _function(path: str) -> Callable[[list[object]], list[object]]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def serve_jobs(
    connection: Connection, setup: tuple[str, object] | None, bot_pid: int, log_level: int
) -> None:
    """A worker's life: run the setup, then answer each job until told to stop or the bot is
    gone, so a killed bot leaves no workers behind (nor the tools they run)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the bot decides
    logging.basicConfig(level=log_level, format=LOG_FORMAT)  # its lines read as the bot's
    _leave_with(bot_pid)
    try:
        if setup is not None:
            _function(setup[0])(setup[1])
        connection.send(True)
    except BaseException as error:  # told to the bot, which says what is wrong
        with contextlib.suppress(Exception):
            connection.send(RuntimeError(f"worker setup failed: {error!r}"))
        return
    while True:
        message = _receive(connection)
        if message is None:
            return
        path, payloads = message  # type: ignore[misc]
        try:
            answer: tuple[str, object] = ("ok", _function(path)(payloads))
        except Exception as error:
            answer = ("error", error)
        try:
            connection.send(answer)
        except (EOFError, OSError):
            return
        except Exception as error:  # a result that will not pickle
            connection.send(("error", RuntimeError(f"{path}: result not sendable: {error}")))
