"""The worker-process pool: work on every core, urgent work first, batches, contained crashes,
a full pool said at once and a bounded stop — through real worker processes."""

import asyncio
import os
import time

import pytest

from bot.workers import (
    JobKind,
    JobTimedOut,
    QueueFull,
    ShuttingDown,
    WorkerCrashed,
    WorkerPool,
)

ECHO = JobKind("echo", "tests.worker_jobs:echo", priority=0, batch=50)
URGENT = JobKind("urgent", "tests.worker_jobs:start_time", priority=0)
LATER = JobKind("later", "tests.worker_jobs:start_time", priority=2)
NAP = JobKind("nap", "tests.worker_jobs:nap", priority=1)
CRASH = JobKind("crash", "tests.worker_jobs:crash_on", priority=0, batch=10)
SOME_FAIL = JobKind("some", "tests.worker_jobs:fail_some", priority=0, batch=10)
HANG = JobKind("hang", "tests.worker_jobs:nap", priority=0, timeout_s=0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def pool():
    pools = []

    async def make(**options) -> WorkerPool:
        made = WorkerPool(**options)
        await made.start()
        pools.append(made)
        return made

    yield make
    for made in pools:
        await made.close()


async def test_jobs_run_in_worker_processes_each_set_up_once(pool, tmp_path):
    log = tmp_path / "setup.log"
    workers = await pool(workers=2, setup=("tests.worker_jobs:note_setup", str(log)))
    results = await asyncio.gather(*(workers.run(ECHO, n) for n in range(6)))
    pids = {pid for pid, _, _ in results}
    assert os.getpid() not in pids
    assert pids <= set(workers.worker_pids())
    assert [payload for _, _, payload in results] == list(range(6))
    assert sorted(map(int, log.read_text().split())) == sorted(workers.worker_pids())


async def test_a_worker_whose_setup_fails_says_why(tmp_path):
    workers = WorkerPool(workers=1, setup=("tests.worker_jobs:broken_setup", None))
    with pytest.raises(RuntimeError, match="no model here"):
        await workers.start()
    await workers.close()


async def test_an_urgent_job_submitted_behind_twenty_later_ones_starts_first(pool):
    workers = await pool(workers=1)
    busy = asyncio.ensure_future(workers.run(NAP, 0.3))
    await asyncio.sleep(0.05)  # the only worker is busy; what follows waits in the queue
    later = [asyncio.ensure_future(workers.run(LATER, n)) for n in range(20)]
    urgent = asyncio.ensure_future(workers.run(URGENT, "now"))
    await busy
    started_urgent = await urgent
    assert all(started_urgent < started for started in await asyncio.gather(*later))


async def test_jobs_waiting_together_go_to_a_worker_as_one_batch(pool):
    workers = await pool(workers=1)
    busy = asyncio.ensure_future(workers.run(NAP, 0.3))
    await asyncio.sleep(0.05)
    results = await asyncio.gather(*(workers.run(ECHO, n) for n in range(12)))
    await busy
    assert {(pid, size) for pid, size, _ in results} == {(workers.worker_pids()[0], 12)}


async def test_a_crashing_job_costs_its_worker_not_its_batch_or_the_pool(pool):
    workers = await pool(workers=1)
    first_pid = workers.worker_pids()[0]
    busy = asyncio.ensure_future(workers.run(NAP, 0.2))
    await asyncio.sleep(0.05)
    jobs = [asyncio.ensure_future(workers.run(CRASH, p)) for p in ("a", "crash", "b")]
    await busy
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    assert outcomes[0] == "a" and outcomes[2] == "b"  # tried again on their own
    assert isinstance(outcomes[1], WorkerCrashed)
    assert await workers.run(ECHO, "after") == (workers.worker_pids()[0], 1, "after")
    assert workers.worker_pids()[0] != first_pid and not _alive(first_pid)


async def test_a_failing_payload_fails_alone(pool):
    workers = await pool(workers=1)
    busy = asyncio.ensure_future(workers.run(NAP, 0.2))
    await asyncio.sleep(0.05)
    jobs = [asyncio.ensure_future(workers.run(SOME_FAIL, p)) for p in ("x", "bad", "y")]
    await busy
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    assert outcomes[0] == "x" and outcomes[2] == "y"
    assert isinstance(outcomes[1], ValueError) and "bad payload" in str(outcomes[1])


async def test_a_job_past_its_time_limit_is_stopped_with_its_worker(pool):
    workers = await pool(workers=1)
    stuck_pid = workers.worker_pids()[0]
    started = time.monotonic()
    with pytest.raises(JobTimedOut):
        await workers.run(HANG, 60.0)
    assert time.monotonic() - started < 10
    assert not _alive(stuck_pid)
    assert (await workers.run(ECHO, 1))[2] == 1  # a new worker took its place


async def test_a_full_pool_refuses_a_melody_at_once_with_an_estimate(pool):
    workers = await pool(workers=1, queue_size=1)
    places = [workers.admit(), workers.admit()]
    assert workers.is_full()
    started = time.perf_counter()
    with pytest.raises(QueueFull) as full:
        workers.admit()
    assert time.perf_counter() - started < 0.05 and full.value.wait_estimate_s > 0
    taken_over = workers.admit(admitted=True)  # a melody a stopped process left is never refused
    assert workers.pending == 3
    for place in [*places, taken_over]:
        place.release()
        place.release()  # releasing twice gives back one place only
    assert workers.pending == 0 and not workers.is_full()


async def test_drain_cancels_what_waits_and_waits_only_for_what_runs(pool):
    workers = await pool(workers=1)
    pids = workers.worker_pids()
    running = asyncio.ensure_future(workers.run(NAP, 0.3))
    await asyncio.sleep(0.05)
    waiting = [asyncio.ensure_future(workers.run(URGENT, n)) for n in range(4)]
    started = time.perf_counter()
    assert await workers.drain(timeout_s=5, cancel=[URGENT])
    for job in waiting:  # none of them ran
        with pytest.raises(ShuttingDown):
            await job
    assert await running == 0.3
    assert time.perf_counter() - started < 3
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(ShuttingDown):
        workers.admit()


async def test_drain_gives_up_on_a_hung_job_at_its_bound(pool):
    workers = await pool(workers=1)
    pid = workers.worker_pids()[0]
    stuck = asyncio.ensure_future(workers.run(NAP, 60.0))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    assert not await workers.drain(timeout_s=0.3)
    assert time.perf_counter() - started < 5
    with pytest.raises(ShuttingDown):
        await stuck
    assert not _alive(pid)


async def test_a_job_whose_caller_gave_up_is_skipped_and_the_pool_keeps_serving(pool):
    workers = await pool(workers=1)
    busy = asyncio.ensure_future(workers.run(NAP, 0.3))
    await asyncio.sleep(0.05)
    given_up = asyncio.ensure_future(workers.run(ECHO, "never"))
    await asyncio.sleep(0.05)
    given_up.cancel()  # the only job waiting: once the worker is free, nothing is left to do
    await busy
    ticks = 0
    for _ in range(5):  # the event loop still turns (a pool spinning on no work would stop it)
        await asyncio.sleep(0.02)
        ticks += 1
    assert ticks == 5
    assert (await workers.run(ECHO, "next"))[2] == "next"
    assert workers.jobs_done["echo"] == 1  # the given-up job never ran
