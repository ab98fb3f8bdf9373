"""What must hold across processes, crashes, upgrades and backups."""

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time

from storage import Limits, Repository, db
from tests.conftest import PROJECT_ROOT


def _writer(path, name, count):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage_writer", str(path), name, str(count)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite3"
    writers = [_writer(path, name, 150) for name in ("discord", "telegram")]
    outputs = [w.communicate(timeout=120) for w in writers]
    for writer, (_, errors) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, errors
        assert "locked" not in errors
    ids = [int(line) for out, _ in outputs for line in out.split()]
    assert len(ids) == len(set(ids)) == 300
    with sqlite3.connect(path) as conn:
        done = conn.execute("SELECT count(*) FROM generations WHERE status = 'done'").fetchone()[0]
    assert done == 300


def test_sigkill_mid_stream_loses_nothing_committed(tmp_path):
    path = tmp_path / "crash.sqlite3"
    writer = _writer(path, "doomed", 0)
    committed = []
    deadline = time.monotonic() + 60
    while len(committed) < 200 and time.monotonic() < deadline:
        committed.append(int(writer.stdout.readline()))
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert len(committed) == 200
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT id FROM generations")}
    assert set(committed) <= stored


async def test_upgrade_from_version_one_keeps_the_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    connection = await db.connect(path)
    assert await db.migrate(connection, target=1) == 1
    await connection.execute("INSERT INTO users VALUES (1, 'discord', '7', 'Old Timer', 1.0, 2.0)")
    await connection.execute(
        """INSERT INTO generations (id, user_id, platform, chat_id, request_text, request_json,
               model_name, model_version, rng_seed, midi, status, created_at)
           VALUES (1, 1, 'discord', 'c', 'C4 D4', '{}', 'm', 'v', 5, x'4d546864', 'done', 3.0)"""
    )
    await connection.close()

    async with await Repository.open(path) as repo:
        assert await db.schema_version(repo._db) == db.LATEST_VERSION > 1
        old = await repo.get_generation(1)
        assert (old.request_text, old.midi, old.melody_key) == ("C4 D4", b"MThd", None)
        user = await repo.find_user("discord", "7")
        await repo.complete_generation(1, b"MThd", "G", 64)
        assert (await repo.get_generation(1)).melody_key == "G"
        assert user.display_name == "Old Timer"
    async with await Repository.open(path) as again:  # running migrations twice changes nothing
        assert await db.schema_version(again._db) == db.LATEST_VERSION


async def test_backup_while_writing_is_consistent(tmp_path):
    path = tmp_path / "live.sqlite3"
    async with await Repository.open(
        path, defaults=Limits(daily_quota=10**6, cooldown_s=0)
    ) as repo:
        user = await repo.upsert_user("discord", "1", "Ann")

        async def write(first, last):
            for i in range(first, last):
                await repo.reserve_generation(user, "discord", "c", "x", {}, "m", "v", i)

        await write(0, 20)
        writing = asyncio.create_task(write(20, 200))
        await asyncio.sleep(0)
        await repo.backup(tmp_path / "copy.sqlite3")
        await writing
    with sqlite3.connect(tmp_path / "copy.sqlite3") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        copied = copy.execute("SELECT count(*) FROM generations").fetchone()[0]
    assert 20 <= copied <= 200
