"""The bounded worker pool: work off the event loop, a full queue said at once, a bounded drain."""

import asyncio
import threading
import time

import pytest

from bot.workers import QueueFull, ShuttingDown, WorkerPool


async def test_work_runs_on_worker_threads_not_the_loop():
    pool = WorkerPool(workers=2, queue_size=2)
    names = await asyncio.gather(
        *(pool.run(lambda: threading.current_thread().name) for _ in range(3))
    )
    assert all(name.startswith("melody") for name in names)
    assert pool.pending == 0


async def test_a_full_queue_is_refused_at_once_with_an_estimate():
    pool = WorkerPool(workers=1, queue_size=1)
    release = threading.Event()
    first = asyncio.create_task(pool.run(release.wait))
    second = asyncio.create_task(pool.run(release.wait))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    with pytest.raises(QueueFull) as full:
        await pool.run(lambda: None)
    assert time.perf_counter() - started < 0.05  # no waiting behind the others
    assert full.value.wait_estimate_s > 0
    release.set()
    await asyncio.gather(first, second)


async def test_a_melody_admitted_before_a_restart_never_meets_a_full_queue():
    pool = WorkerPool(workers=1, queue_size=1)
    release = threading.Event()
    busy = [asyncio.create_task(pool.run(release.wait)) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert pool.is_full()
    taken_over = asyncio.create_task(pool.run(lambda: "sent", admitted=True))
    with pytest.raises(QueueFull):
        await pool.run(lambda: None)  # a newcomer is told to come back
    release.set()
    assert await taken_over == "sent"
    await asyncio.gather(*busy)


async def test_drain_waits_for_work_in_flight_but_not_forever():
    pool = WorkerPool(workers=1, queue_size=1)
    task = asyncio.create_task(pool.run(time.sleep, 0.2))
    await asyncio.sleep(0.01)
    assert await pool.drain(timeout_s=5)
    await task
    with pytest.raises(ShuttingDown):  # closed: takes no new work
        await pool.run(lambda: None)
    stuck = WorkerPool(workers=1, queue_size=1)
    release = threading.Event()
    hanging = asyncio.create_task(stuck.run(release.wait))
    await asyncio.sleep(0.01)
    assert not await stuck.drain(timeout_s=0.1)
    release.set()
    await hanging


async def test_drain_cancels_what_waits_and_waits_only_for_what_runs():
    pool = WorkerPool(workers=1, queue_size=5)
    release = threading.Event()
    running = asyncio.create_task(pool.run(release.wait))
    waiting = [asyncio.create_task(pool.run(time.sleep, 5)) for _ in range(4)]
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    draining = asyncio.create_task(pool.drain(timeout_s=5))
    await asyncio.sleep(0.05)
    for job in waiting:  # told at once, none of them ran
        with pytest.raises(ShuttingDown):
            await job
    release.set()
    assert await draining and await running
    assert time.perf_counter() - started < 1  # not 4 × 5 s of queued work


async def test_core_tells_users_when_the_queue_is_full(tmp_path, tiny_model_dir):
    from bot.app import open_app
    from bot.config import Settings
    from bot.core import Incoming

    app = await open_app(
        Settings(
            _env_file=None,
            data_dir=tmp_path,
            model_dir=tiny_model_dir,
            workers=1,
            queue_size=1,
            cooldown_s=0,
            audio=False,
        )
    )
    release = threading.Event()
    blockers = [asyncio.create_task(app.pool.run(release.wait)) for _ in range(2)]
    await asyncio.sleep(0.05)
    reply = await app.core.handle(Incoming("test", "c", "u", "U", "!melody C4 D4 bars=2"))
    assert "busy composing for others" in reply.text and "seconds" in reply.text
    assert await app.repo.find_user("test", "u") is None  # nothing recorded for a refusal
    release.set()
    await asyncio.gather(*blockers)
    await app.close()
