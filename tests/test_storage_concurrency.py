"""Many tasks, several connections, two OS processes, SIGKILL and live backups on one database.

The quota and the two-writer tests run on SQLite and on PostgreSQL; crash safety, backups and
busy answers are SQLite's own matters."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Limits, QuotaExceeded, Repository, db
from tests import raw_database

WORKER = Path(__file__).with_name("storage_proc.py")
UNLIMITED = Limits(daily_quota=10**9, cooldown_s=0)


def _rows(target: Path | str, sql: str) -> list[tuple]:
    return raw_database.execute(target, sql)


async def _reserve(repo: Repository, user, n: int = 0, chat: str = "chat") -> int:
    return await repo.reserve_melody(user, "test", chat, f"r{n}", {"n": n}, "lstm", "v1", n)


# --- the quota is one atomic step ------------------------------------------------------------


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
async def test_fifty_concurrent_requests_against_a_quota_of_five(database_target, seed):
    """Exactly five go through, whether the tasks start together or at random moments."""
    rng = random.Random(seed)
    async with await Repository.open(
        database_target, defaults=Limits(daily_quota=5, cooldown_s=0)
    ) as repo:
        user = await repo.upsert_user("test", "1", "Ann")

        async def one(n: int) -> int:
            if seed is not None:
                await asyncio.sleep(rng.random() * 0.005)
            return await _reserve(repo, user, n)

        results = await asyncio.gather(*(one(n) for n in range(50)), return_exceptions=True)
    accepted = [r for r in results if isinstance(r, int)]
    assert len(accepted) == 5
    assert all(isinstance(r, QuotaExceeded) for r in results if not isinstance(r, int))
    assert _rows(database_target, "SELECT count(*) FROM generations") == [(5,)]


async def test_quota_holds_across_connections(database_target):
    """Two repositories (two connections, as two processes would have) share one quota."""
    path = database_target
    limits = Limits(daily_quota=5, cooldown_s=0)
    async with (
        await Repository.open(path, defaults=limits) as first,
        await Repository.open(path, defaults=limits) as second,
    ):
        user = await first.upsert_user("test", "1", "Ann")
        calls = [_reserve(repo, user, n) for n in range(25) for repo in (first, second)]
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 5


def test_quota_holds_across_processes(database_target):
    path = database_target
    outputs = _run_together(path, [("quota", "a", 25), ("quota", "b", 25)])
    assert sum(int(out.split()[-1]) for out in outputs) == 5
    assert _rows(path, "SELECT count(*) FROM generations") == [(5,)]


# --- two processes, one file -----------------------------------------------------------------


def _start(path: Path | str, mode: str, name: str, count: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(path), name, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read()  # type: ignore[union-attr]
    return process


def _run_together(path: Path | str, jobs: list[tuple[str, str, int]]) -> list[str]:
    """Start every job, then release them at once; returns each one's stdout."""
    processes = [_start(path, *job) for job in jobs]
    for process in processes:
        process.stdin.write("go\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "locked" not in err
        outputs.append(out)
    return outputs


def test_two_processes_writing_at_once_lose_nothing(database_target):
    path = database_target  # both processes race to create the schema, too
    outputs = _run_together(path, [("write", "discord", 200), ("write", "telegram", 200)])
    names = ("discord", "telegram")
    printed = {
        name: [int(i) for i in out.split()] for name, out in zip(names, outputs, strict=True)
    }
    assert all(len(ids) == 200 for ids in printed.values())
    rows = _rows(
        path,
        """SELECT g.id, u.platform_user_id FROM generations g JOIN users u ON u.id = g.user_id
           WHERE g.status = 'done' ORDER BY g.id""",
    )
    assert len(rows) == 400
    for name, ids in printed.items():
        assert sorted(ids) == [i for i, who in rows if who == name]
    writers = [who for _, who in rows]
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    assert switches > 1, "the two writers never overlapped, so this proved nothing"
    if isinstance(path, Path):
        assert _rows(path, "PRAGMA integrity_check") == [("ok",)]


# --- crash safety ----------------------------------------------------------------------------


def test_sigkill_mid_stream_loses_nothing_committed(tmp_path):
    path = tmp_path / "crash.sqlite3"
    confirmed: list[int] = []
    for round_, wait_for in enumerate((30, 120, 75)):
        process = _start(path, "write", f"w{round_}", 0)
        process.stdin.write("go\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        for _ in range(wait_for):
            confirmed.append(int(process.stdout.readline()))  # type: ignore[union-attr]
        os.kill(process.pid, signal.SIGKILL)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        confirmed += [int(i) for i in out.split()]  # committed before the kill, still in the pipe
        assert _rows(path, "PRAGMA integrity_check") == [("ok",)]
        done = {i for (i,) in _rows(path, "SELECT id FROM generations WHERE status = 'done'")}
        assert set(confirmed) <= done
    assert len(set(confirmed)) == len(confirmed) >= 225


# --- cancellation ----------------------------------------------------------------------------


async def test_cancelled_requests_leave_no_half_written_step(database_target):
    async with await Repository.open(database_target, defaults=UNLIMITED) as repo:
        user = await repo.upsert_user("test", "1", "Ann")
        for delay in (0, 0.0005, 0.002):
            tasks = [asyncio.create_task(_reserve(repo, user, n)) for n in range(30)]
            await asyncio.sleep(delay)
            for task in tasks[::2]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert any(isinstance(r, asyncio.CancelledError) for r in results)
        rng = random.Random(0)
        timeouts = 0
        for n in range(150):  # time-outs land anywhere: lock wait, BEGIN, INSERTs, COMMIT
            try:
                await asyncio.wait_for(_reserve(repo, user, n), timeout=rng.uniform(0, 0.002))
            except TimeoutError:
                timeouts += 1
        assert timeouts > 0
        melody_id = await _reserve(repo, user)  # the connection is still usable
        assert await repo.complete_melody(melody_id, b"MThd")
    rows = _rows(
        database_target,
        """SELECT (SELECT count(*) FROM generations),
                  (SELECT count(*) FROM usage u JOIN generations g ON g.id = u.generation_id)""",
    )
    assert rows[0][0] == rows[0][1] > 0


# --- online backup ---------------------------------------------------------------------------


async def test_backup_while_writing_is_consistent(tmp_path):
    path = tmp_path / "live.sqlite3"
    async with await Repository.open(path, defaults=UNLIMITED) as repo:
        user = await repo.upsert_user("test", "1", "Ann")
        for n in range(50):
            await repo.complete_melody(await _reserve(repo, user, n), bytes(2000))
        stop = asyncio.Event()
        written = 0

        async def keep_writing() -> None:
            nonlocal written
            while not stop.is_set():
                await repo.complete_melody(await _reserve(repo, user, written), bytes(2000))
                written += 1

        writer = asyncio.create_task(keep_writing())
        while written < 20:
            await asyncio.sleep(0.001)
        before = written
        copy = await repo.backup(tmp_path / "backups" / "copy.sqlite3")
        after = written
        await asyncio.sleep(0.01)
        stop.set()
        await writer
    assert copy == tmp_path / "backups" / "copy.sqlite3"
    assert not copy.with_name("copy.sqlite3.partial").exists()
    assert _rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(copy, "PRAGMA journal_mode") == [("delete",)]
    ((count, with_usage, unfinished),) = _rows(
        copy,
        """SELECT count(*), count(u.id), sum(g.status <> 'done') FROM generations g
           LEFT JOIN usage u ON u.generation_id = g.id""",
    )
    assert 50 + before <= count <= 50 + after + 1
    assert with_usage == count and unfinished <= 1  # at most the one between reserve and complete
    async with await Repository.open(copy) as restored:
        assert await restored.count_history(user) >= 50 + before


async def test_backup_does_not_wait_for_an_open_write_or_copy_it(tmp_path):
    path = tmp_path / "live.sqlite3"
    async with await Repository.open(path) as repo:
        await repo.upsert_user("test", "1", "Ann")
        writer = sqlite3.connect(path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute(
                "INSERT INTO users (platform, platform_user_id, display_name, first_seen,"
                " last_seen) VALUES ('test', '2', 'Uncommitted', 0, 0)"
            )
            copy = await asyncio.wait_for(repo.backup(tmp_path / "copy.sqlite3"), timeout=10)
            writer.execute("COMMIT")
        finally:
            writer.close()
    assert _rows(copy, "SELECT display_name FROM users") == [("Ann",)]
    with pytest.raises(ValueError):
        await asyncio.to_thread(db.backup, path, path)
    with pytest.raises(FileNotFoundError):
        await asyncio.to_thread(db.backup, tmp_path / "none", copy)


# --- busy answers that skip SQLite's own busy handler ----------------------------------------


async def test_busy_answers_are_retried_not_passed_on(tmp_path):
    """With SQLite's busy handler off (timeout 0) every lock conflict comes back at once as
    "database is locked"; the retry wrapper still gets the write through once the lock goes."""
    path = tmp_path / "busy.sqlite3"
    async with await Repository.open(path, busy_timeout_s=0) as repo:
        user = await repo.upsert_user("test", "1", "Ann")
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
        try:
            melody_id = await _reserve(repo, user)
        finally:
            release.cancel()
            holder.close()
        assert (await repo.get_melody(melody_id)).status == "pending"
