"""``melodybot worker``: run the queue's jobs on this machine's cores, for front-ends anywhere.

A worker is a procrastinate worker whose one task hands each job to a local
:class:`~bot.workers.WorkerPool` (the processes that hold the model and the soundfont), so jobs
that arrive together are batched as they are in a single bot, and a job that crashes or hangs
costs one worker process, never the worker. Every worker also looks for jobs whose worker went
silent (killed, its machine gone) and puts them back on the queue: the job runs again elsewhere,
and its idempotency key keeps the reply single.

SIGTERM or Ctrl-C: no new jobs are taken, the running ones finish, then the worker leaves.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time

import procrastinate

from bot.app import worker_setup
from bot.config import Settings
from bot.queue.shared import (
    HEARTBEAT_S,
    QUEUE,
    RESULTS_KEPT_S,
    STALLED_AFTER_S,
    TASK,
    answered,
    decode,
    ensure_schema,
    queue_app,
    store_result,
)
from bot.scratch import Scratch
from bot.workers import ShuttingDown, WorkerPool

log = logging.getLogger("melodybot.worker")
JOBS_PER_PROCESS = 16  # taken at once per worker process, so a batch can form while one runs


async def serve(settings: Settings, *, processes: int | None = None) -> None:
    """Run jobs until told to stop."""
    url = str(settings.database_target)
    await ensure_schema(url)
    processes = processes or settings.workers
    scratch = Scratch(settings.data_dir / "tmp")
    setup, _voice = worker_setup(settings, scratch)
    pool = WorkerPool(
        processes, queue_size=processes * JOBS_PER_PROCESS, setup=("bot.jobs:setup", setup)
    )
    app = queue_app(url, max_connections=4)
    # A job a stopping pool refused goes back on the queue for the next worker.
    retry = procrastinate.RetryStrategy(max_attempts=10, wait=1, retry_exceptions={ShuttingDown})
    app.task(name=TASK, queue=QUEUE, retry=retry)(_runner(app, pool))
    try:
        await pool.start()
        async with app.open_async():
            sweeper = asyncio.create_task(retry_stalled_jobs(app), name="stalled-jobs")
            log.info("worker ready: %d processes, jobs from %s", processes, _where(url))
            try:
                await app.run_worker_async(
                    queues=[QUEUE],
                    name=f"melodybot-{scratch.name}",
                    concurrency=processes * JOBS_PER_PROCESS,
                    update_heartbeat_interval=HEARTBEAT_S,
                    stalled_worker_timeout=STALLED_AFTER_S,
                    delete_jobs="successful",
                    install_signal_handlers=True,
                )
            finally:
                sweeper.cancel()
                await asyncio.gather(sweeper, return_exceptions=True)
    finally:
        await pool.close()
        scratch.close()
        log.info("worker stopped")


def _where(url: str) -> str:
    from storage.postgres import redacted

    return redacted(url)


def _runner(app: procrastinate.App, pool: WorkerPool):
    async def run_job(kind: str, key: str, payload: str) -> None:
        """One job (``kind`` names it for people reading the queue; the payload carries the
        :class:`~bot.workers.JobKind` itself): skipped if its result is stored already (it ran
        before, on a worker that then went silent), else run on the pool and its outcome
        stored under its key."""
        if await answered(app, key):
            log.info("job %s was answered before; not running it twice", key)
            return
        job_kind, body = decode(payload)  # type: ignore[misc]
        try:
            outcome: tuple[str, object] = ("ok", await pool.run(job_kind, body))
        except ShuttingDown:
            raise  # left for the next worker: procrastinate sees it fail and it is retried
        except Exception as error:  # the job's own failure, which its user hears about
            outcome = ("error", error)
        if not await store_result(app, key, pickle.dumps(outcome)):
            log.info("job %s had been answered by another worker meanwhile", key)

    return run_job


async def retry_stalled_jobs(app: procrastinate.App) -> None:
    """Put the jobs of silent workers back on the queue, and forget results long untaken."""
    last_cleanup = 0.0
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=STALLED_AFTER_S
            )
            for job in stalled:
                try:
                    await app.job_manager.retry_job(job)
                except Exception as error:  # another worker retried it first
                    log.debug("job %s: %s", job.id, error)
                    continue
                kind = job.task_kwargs.get("kind")
                log.warning("job %s (%s) of a silent worker runs again", job.id, kind)
            if time.monotonic() - last_cleanup > 60:
                last_cleanup = time.monotonic()
                await app.connector.execute_query_async(
                    """DELETE FROM melodybot_job_results
                       WHERE stored_at < extract(epoch FROM clock_timestamp()) - %(kept)s""",
                    kept=RESULTS_KEPT_S,
                )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("could not look for stalled jobs: %s", error)
