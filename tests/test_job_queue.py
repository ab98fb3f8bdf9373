"""The PostgreSQL job queue with real `melodybot worker` processes: the bot composing through
it, a worker killed mid-job (the job runs again elsewhere, its caller hears once), no worker at
all, and a front-end stopping with jobs still queued."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.app import open_app
from bot.config import Settings
from bot.incoming import Incoming
from bot.queue.client import QueuedJobs
from bot.queue.worker import JOBS_PER_PROCESS
from bot.workers import JobKind, QueueFull, ShuttingDown
from tests import raw_database
from tests.polling import whole

PROJECT = Path(__file__).resolve().parent.parent
SLOW = JobKind("slow", "tests.worker_jobs:mark_and_nap", priority=0, batch=1, timeout_s=60.0)


class Worker:
    """One `melodybot worker` process with one worker process of its own."""

    def __init__(self, url: str, data_dir: Path, model_dir: Path):
        self.name = data_dir.name
        env = os.environ | {
            "QUEUE_TEST_WORKER": self.name,
            "MELODYBOT_DATABASE_URL": url,
            "MELODYBOT_MODEL_DIR": str(model_dir),
            "MELODYBOT_AUDIO": "false",
            "MELODYBOT_RENDERER": "verovio",
            "PYTHONPATH": str(PROJECT),
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "worker.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "melodybot", "worker", "--processes", "1",
             "--data-dir", str(data_dir)],
            cwd=PROJECT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "worker ready" not in self.log.read_text():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def workers(postgres_url, tmp_path, tiny_model_dir):
    started: list[Worker] = []

    def start(count: int = 1) -> list[Worker]:
        new = [
            Worker(postgres_url, tmp_path / f"worker{len(started) + n}", tiny_model_dir)
            for n in range(count)
        ]
        for worker in new:
            worker.wait_ready()
        started.extend(new)
        return new

    yield start
    for worker in started:
        worker.stop()


async def _until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_bot_composes_draws_and_stops_through_the_queue(
    postgres_url, tmp_path, tiny_model_dir, workers
):
    workers(1)
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "bot",
        model_dir=tiny_model_dir,
        audio=False,
        database_url=postgres_url,
        job_queue="postgresql",
        cooldown_s=0,
        daily_quota=2,
    )
    app = await open_app(settings)
    try:
        assert isinstance(app.pool, QueuedJobs)
        await _until(lambda: _true(app.pool.workers == 1))
        ask = Incoming("test", "club", "ann", "Ann", "!melody C4 D4 E4 seed=4 bars=4")
        reply = await whole(await app.core.handle(ask))
        assert reply.melody_id and {a.kind for a in reply.attachments} >= {"midi", "png"}
        stored = await app.repo.get_melody(reply.melody_id)
        assert stored.status == "done" and stored.midi == reply.attachment("midi").data
        assert app.pool.jobs_done["compose"] == 1 and app.pool.jobs_done["draw"] == 1
        assert stored.midi.startswith(b"MThd") and stored.owner == app.scratch.name
        await whole(await app.core.handle(ask))
        refused = await app.core.handle(ask)
        assert refused.refusal and "your 2 melodies for today" in refused.text
    finally:
        await app.close()
    left = raw_database.execute(
        postgres_url, "SELECT count(*) FROM melodybot_job_results WHERE taken_at IS NULL"
    )
    assert left == [(0,)]  # every result was taken by the one who asked


async def test_a_worker_killed_mid_job_costs_a_rerun_never_a_second_answer(
    postgres_url, tmp_path, workers
):
    first, second = workers(2)
    marks = tmp_path / "marks"
    marks.mkdir()
    jobs = QueuedJobs(postgres_url, "frontend", queue_size=10)
    await jobs.start()
    try:
        await _until(lambda: _true(jobs.workers == 2))
        asked = asyncio.create_task(jobs.run(SLOW, (str(marks), 4.0, "the answer")))
        await _until(lambda: _true(any(marks.iterdir())))
        (taken,) = marks.iterdir()
        victim = first if taken.name.startswith(f"{first.name}-") else second
        survivor = second if victim is first else first
        os.kill(victim.pid, signal.SIGKILL)
        started = time.monotonic()
        worker, value = await asyncio.wait_for(asked, timeout=90)
        assert (worker, value) == (survivor.name, "the answer")
        assert 4.0 < time.monotonic() - started < 60  # noticed as silent, then run again
        ran = sorted(p.name.split("-")[0] for p in marks.iterdir())
        assert ran == sorted([victim.name, survivor.name])  # twice, once on each
        rows = raw_database.execute(
            postgres_url, "SELECT count(*), count(taken_at) FROM melodybot_job_results"
        )
        assert rows == [(1, 1)]  # one result, taken once
        assert jobs.jobs_done["slow"] == 1
    finally:
        await jobs.close()
        survivor_log = survivor.log.read_text()
    assert "of a silent worker runs again" in survivor_log


async def _true(value: bool) -> bool:
    return value


async def test_with_no_worker_alive_a_melody_is_refused_at_once(postgres_url):
    jobs = QueuedJobs(postgres_url, "frontend")
    await jobs.start()
    try:
        assert jobs.workers == 0 and jobs.is_full()
        with pytest.raises(QueueFull) as busy:
            jobs.admit()
        assert busy.value.wait_estimate_s >= 30
    finally:
        await jobs.close()


async def test_stopping_takes_queued_jobs_back_and_lets_running_ones_finish(
    postgres_url, tmp_path, workers
):
    workers(1)
    marks = tmp_path / "marks"
    marks.mkdir()
    jobs = QueuedJobs(postgres_url, "frontend", queue_size=10)
    await jobs.start()
    await _until(lambda: _true(jobs.workers == 1))
    # One worker process takes JOBS_PER_PROCESS jobs at once: the first runs, the rest wait
    # their turn in its pool; eight more than that stay on the queue itself.
    held = JOBS_PER_PROCESS
    asked_for = held + 8
    asked = [
        asyncio.create_task(jobs.run(SLOW, (str(marks), 0.5, n)), name=f"job{n}")
        for n in range(asked_for)
    ]
    await _until(lambda: _true(any(marks.iterdir())))

    async def all_placed() -> bool:  # every job asked for is on the queue, and the worker's taken
        rows = raw_database.execute(
            postgres_url, "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1"
        )
        return dict(rows) == {"doing": held, "todo": 8}

    await _until(all_placed)
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "melodybot", "queue"],
        env=os.environ | {"MELODYBOT_DATABASE_URL": postgres_url},
        capture_output=True, text=True, cwd=PROJECT, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "workers alive: 1" in shown.stdout
    states = {
        state: int(count) for state, count in re.findall(r"slow\s+(\w+)\s+(\d+)", shown.stdout)
    }
    # (a job or two may have finished while the command started, and the next one taken)
    assert states["doing"] == held and 1 <= states["todo"] <= 8, shown.stdout
    finished = await jobs.drain(20.0, cancel=[SLOW])
    results = await asyncio.gather(*asked, return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ShuttingDown)]
    assert len(done) >= held and refused and len(done) + len(refused) == asked_for, results
    assert finished
    left = raw_database.execute(
        postgres_url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
    )
    assert left == [(0,)]  # what was refused is off the queue: no worker runs it for nobody


async def test_sigterm_lets_a_worker_finish_its_job_then_leave(postgres_url, tmp_path, workers):
    (worker,) = workers(1)
    marks = tmp_path / "marks"
    marks.mkdir()
    jobs = QueuedJobs(postgres_url, "frontend", queue_size=10)
    await jobs.start()
    try:
        await _until(lambda: _true(jobs.workers == 1))
        asked = asyncio.create_task(jobs.run(SLOW, (str(marks), 2.0, "finished")))
        await _until(lambda: _true(any(marks.iterdir())))
        worker.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asked, timeout=60) == (worker.name, "finished")
        code = await asyncio.to_thread(worker.process.wait, 60)
        assert code == 0, worker.log.read_text()
        assert "worker stopped" in worker.log.read_text()
        await _until(lambda: _true(jobs.workers == 0))  # it said goodbye: no heartbeat left
    finally:
        await jobs.close()


@pytest.mark.parametrize("command", ["worker", "queue"])
def test_an_unreachable_queue_is_a_clear_error(command, postgres_server):
    from click.testing import CliRunner

    from melodybot.cli import main

    url = f"postgresql://bot:hunter2@127.0.0.1:{postgres_server.port + 1}/melodybot"
    result = CliRunner(env={"MELODYBOT_DATABASE_URL": url}).invoke(main, [command])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot reach the database postgresql://bot:***@127.0.0.1" in result.output
    assert "hunter2" not in result.output


async def test_a_database_restart_costs_seconds_not_the_worker_or_the_queue(
    postgres_server, postgres_url, tmp_path, workers
):
    (worker,) = workers(1)
    marks = tmp_path / "marks"
    marks.mkdir()
    jobs = QueuedJobs(postgres_url, "frontend", queue_size=10)
    await jobs.start()
    try:
        await _until(lambda: _true(jobs.workers == 1))
        assert await jobs.run(SLOW, (str(marks), 0.1, "before")) == (worker.name, "before")
        await asyncio.to_thread(postgres_server.restart)  # every connection cut, as in a crash
        after = await asyncio.wait_for(jobs.run(SLOW, (str(marks), 0.1, "after")), timeout=90)
        assert after == (worker.name, "after")
        assert worker.process.poll() is None  # the worker rode it out
    finally:
        await jobs.close()
