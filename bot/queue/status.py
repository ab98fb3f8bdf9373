"""What the queue holds, for operators (``melodybot queue``): read straight from its tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.queue.shared import QUEUE, STALLED_AFTER_S
from storage.postgres import open_connection


@dataclass
class QueueStatus:
    workers_alive: int = 0
    workers_silent: int = 0  # registered, but quiet past the stall limit: gone, or about to be
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) → count
    results_untaken: int = 0


async def queue_status(url: str) -> QueueStatus:
    status = QueueStatus()
    async with await open_connection(url) as connection:
        cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        if not (await cursor.fetchone())[0]:  # type: ignore[index]
            return status  # no front-end or worker has run on this database yet
        cursor = await connection.execute(
            """SELECT count(*) FILTER (WHERE last_heartbeat > now() - make_interval(secs => %s)),
                      count(*) FILTER (WHERE last_heartbeat <= now() - make_interval(secs => %s))
               FROM procrastinate_workers""",
            (STALLED_AFTER_S, STALLED_AFTER_S),
        )
        status.workers_alive, status.workers_silent = await cursor.fetchone()  # type: ignore[misc]
        cursor = await connection.execute(
            """SELECT coalesce(args->>'kind', '?'), status::text, count(*)
               FROM procrastinate_jobs WHERE queue_name = %s GROUP BY 1, 2 ORDER BY 1, 2""",
            (QUEUE,),
        )
        status.jobs = {(kind, state): n for kind, state, n in await cursor.fetchall()}
        cursor = await connection.execute(
            "SELECT count(*) FROM melodybot_job_results WHERE taken_at IS NULL"
        )
        (status.results_untaken,) = await cursor.fetchone()  # type: ignore[misc]
    return status
