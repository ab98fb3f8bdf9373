"""PostgreSQL's own matters, on a real server: its migrations, the same schema as SQLite's, a lost
connection, processes' liveness across machines, and ``melodybot migrate-data``."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from melodybot.cli import main
from storage import GLOBAL, QuotaExceeded, Repository, db, postgres
from storage.db import StorageError
from tests import raw_database

PROJECT = Path(__file__).resolve().parent.parent


def _columns_sqlite(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as raw:
        tables = [
            name
            for (name,) in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: sorted(r[1] for r in raw.execute(f"PRAGMA table_info({t})")) for t in tables}


def _columns_postgres(url: str) -> dict[str, list[str]]:
    rows = raw_database.execute(
        url,
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name <> 'melodybot_schema'""",
    )
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return {t: sorted(c) for t, c in found.items()}


async def test_both_engines_have_the_same_tables_and_columns_at_every_version(
    tmp_path, postgres_server
):
    assert [m.version for m in db.migrations("postgresql")] == [
        m.version for m in db.migrations("sqlite")
    ]
    for version in range(1, db.latest_version() + 1):
        path, url = tmp_path / f"v{version}.sqlite3", postgres_server.database()
        connection = await db.connect(path)
        await db.migrate(connection, target=version)
        await connection.close()
        pg = await postgres.PostgresConnection.connect(url)
        assert await postgres.migrate(pg, target=version) == version
        await pg.close()
        assert _columns_postgres(url) == _columns_sqlite(path), f"at version {version}"


async def test_a_fresh_database_migrates_once_whoever_starts_first(postgres_url):
    repos = await asyncio.gather(*(Repository.open(postgres_url) for _ in range(4)))
    for repo in repos:
        assert await postgres.schema_version(repo._db) == db.latest_version()
        await repo.close()
    before = _columns_postgres(postgres_url)
    async with await Repository.open(postgres_url) as repo:
        assert repo.engine == "postgresql" and repo.path is None
        assert await postgres.migrate(repo._db) == db.latest_version()
    assert _columns_postgres(postgres_url) == before


async def test_a_version_1_database_with_data_is_upgraded_intact(postgres_url):
    connection = await postgres.PostgresConnection.connect(postgres_url)
    await postgres.migrate(connection, target=1)
    await connection.execute(
        """INSERT INTO users VALUES (1, 'discord', '111', 'Ann', 1.0, 2.0);
           INSERT INTO generations (id, user_id, platform, chat_id, request_text, request_json,
                                    model_name, model_version, rng_seed, status, created_at,
                                    completed_at, midi)
           VALUES (7, 1, 'discord', 'g', 'C4 D4', '{"bars": 8}', 'esac-lstm', 'v0', 99, 'done',
                   1.5, 1.6, '\\x4d546864');
           INSERT INTO usage (user_id, platform, chat_id, created_at, generation_id)
           VALUES (1, 'discord', 'g', 1.5, 7);
           SELECT setval(pg_get_serial_sequence('generations', 'id'), 7);"""
    )
    await connection.close()
    async with await Repository.open(postgres_url) as repo:
        old = await repo.get_melody(7)
        assert (old.request_text, old.request, old.midi, old.rng_seed) == (
            "C4 D4",
            {"bars": 8},
            b"MThd",
            99,
        )
        assert old.page_id and (await repo.melody_page(old.page_id)).melody.id == 7
        await repo.set_limit("discord", "g", "daily_quota", 2, "mod")
        new_id = await repo.reserve_melody(1, "discord", "g", "E4", {}, "m", "v1", 1, now=1e3)
        assert new_id > 7
        with pytest.raises(QuotaExceeded):
            await repo.reserve_melody(1, "discord", "g", "F4", {}, "m", "v1", 2, now=2e3)


async def test_a_database_from_newer_code_is_refused_untouched(postgres_url):
    async with await Repository.open(postgres_url):
        pass
    raw_database.execute(postgres_url, "UPDATE melodybot_schema SET version = version + 1")
    with pytest.raises(db.SchemaTooNew):
        await Repository.open(postgres_url)
    assert raw_database.execute(postgres_url, "SELECT version FROM melodybot_schema") == [
        (db.latest_version() + 1,)
    ]


async def test_an_unreachable_server_is_a_clear_error_without_the_password(postgres_server):
    url = f"postgresql://bot:hunter2@127.0.0.1:{postgres_server.port + 1}/melodybot"
    with pytest.raises(StorageError) as refused:
        await Repository.open(url)
    message = str(refused.value)
    assert "hunter2" not in message and "bot:***@127.0.0.1" in message
    assert "MELODYBOT_DATABASE_URL" in message


def _cut_every_connection(url: str) -> None:
    raw_database.execute(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )


async def test_a_lost_connection_costs_one_step_and_the_next_one_reconnects(
    postgres_url, monkeypatch
):
    from storage import repository

    async with await Repository.open(postgres_url) as repo:
        ann = await repo.upsert_user("discord", "1", "Ann")
        await repo.hold_owner("alive1")
        monkeypatch.setattr(repository, "IDLE_CHECK_S", 3600.0)  # a busy bot: no checks
        _cut_every_connection(postgres_url)
        with pytest.raises(Exception):  # noqa: B017 - the step in flight when the link died
            await repo.get_user(ann.id)
        assert await repo.get_user(ann.id) == ann  # and the next one works again
        monkeypatch.setattr(repository, "IDLE_CHECK_S", 0.0)  # a quiet bot: checked first
        _cut_every_connection(postgres_url)
        assert await repo.get_user(ann.id) == ann  # nobody's request is the one that fails
        async with await Repository.open(postgres_url) as other:
            assert await other.owner_alive("alive1")  # the lock came back with the connection


async def test_a_process_is_alive_while_its_connection_holds_its_lock(postgres_url):
    async with await Repository.open(postgres_url) as watcher:
        assert await watcher.owner_alive("nobody") is False
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, postgres_url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT,
        )
        try:
            assert holder.stdout.readline().strip() == "holding"  # type: ignore[union-attr]
            assert await watcher.owner_alive("worker-a") is True
            assert await watcher.owner_alive("worker-a") is True  # asking twice takes nothing
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
            for _ in range(100):  # the server notices the closed socket at once, or nearly
                if not await watcher.owner_alive("worker-a"):
                    break
                await asyncio.sleep(0.05)
            assert await watcher.owner_alive("worker-a") is False
        finally:
            holder.kill()
    async with await Repository.open(Path(os.devnull).parent / "unused.sqlite3") as sqlite:
        assert await sqlite.owner_alive("worker-a") is None  # SQLite: the scratch lock tells


_HOLDER = """
import asyncio, sys
from storage import Repository

async def hold():
    repo = await Repository.open(sys.argv[1])
    await repo.hold_owner("worker-a")
    print("holding", flush=True)
    await asyncio.sleep(600)

asyncio.run(hold())
"""


def test_placeholders_are_translated_outside_string_literals_only():
    sql = "SELECT '?', ':x', a FROM t WHERE b = ? AND c = :name AND d::int = 1 AND e LIKE '5%'"
    assert postgres.translate(sql) == (
        "SELECT '?', ':x', a FROM t WHERE b = %s AND c = %(name)s AND d::int = 1 AND e LIKE '5%'"
    )
    assert postgres.translate("SELECT 100 % 7") == "SELECT 100 %% 7"


async def _fill(path: Path) -> dict[str, object]:
    """A SQLite file with something in every table, as a bot that ran a while leaves it."""
    async with await Repository.open(path) as repo:
        ann = await repo.upsert_user("discord", "1", "Ann")
        bob = await repo.upsert_user("telegram", "2", "Bob")
        await repo.set_limit(GLOBAL, GLOBAL, "daily_quota", 100, "owner")
        await repo.set_limit(GLOBAL, GLOBAL, "cooldown_s", 0, "owner")
        await repo.fail_melody(
            await repo.reserve_melody(ann, "discord", "c", "x", {}, "m", "v", 1), "broke"
        )
        ids = []
        for n in range(12):  # the last, and highest, is Bob's, whom the file then forgets
            user = bob if n % 2 else ann
            platform = user.platform
            melody_id = await repo.reserve_melody(
                user, platform, "c", f"C4 {n}", {"n": n}, "esac-lstm", "v1", 10**12 + n
            )
            await repo.complete_melody(melody_id, b"MThd" + bytes([n]) * 50, "G", 64, tokens="60")
            ids.append(melody_id)
        await repo.ban("telegram", "c", bob, "mod", "spam", duration_s=3600)
        await repo.set_gallery("discord", "c", True, "mod", show_names=True)
        await repo.inbox_add("telegram", 99, '{"update_id": 99}')
        await repo.forget_user(bob)  # leaves removed pages and a gap in the ids
        highest = ids[-1]
        kept = await repo.get_melody(ids[-2])
    return {"highest": highest, "kept": kept, "ann": ann}


def test_migrate_data_copies_every_row_and_refuses_a_second_time(tmp_path, postgres_url):
    source = tmp_path / "bot.sqlite3"
    filled = asyncio.run(_fill(source))
    runner = CliRunner()
    result = runner.invoke(
        main, ["migrate-data", "--from", str(source), "--to", postgres_url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "every count checked" in result.output
    for table in ("users", "generations", "usage", "limits", "bans", "audit_log", "inbox"):
        (want,) = raw_database.execute(source, f"SELECT count(*) FROM {table}")
        assert raw_database.execute(postgres_url, f"SELECT count(*) FROM {table}") == [want]
        assert want[0] > 0, table
        assert f"{table} " in result.output
    for table in ("removed_pages", "galleries"):
        assert raw_database.execute(source, f"SELECT * FROM {table} ORDER BY 1") == [
            tuple(r)
            for r in raw_database.execute(postgres_url, f"SELECT * FROM {table} ORDER BY 1")
        ]

    async def check() -> None:
        async with await Repository.open(postgres_url) as repo:
            kept = filled["kept"]
            assert await repo.get_melody(kept.id) == kept  # every column, the MIDI too
            assert await repo.inbox("telegram", now=kept.created_at) == [(99, '{"update_id": 99}')]
            assert (await repo.chat_gallery("discord", "c")).show_names
            removed = raw_database.execute(source, "SELECT page_id FROM removed_pages")
            assert await repo.melody_page(removed[0][0]) == "gone"
            new_id = await repo.reserve_melody(filled["ann"], "discord", "c", "D4", {}, "m", "v", 1)
            assert new_id > filled["highest"]  # the forgotten melodies' numbers stay unused

    asyncio.run(check())
    again = runner.invoke(main, ["migrate-data", "--from", str(source), "--to", postgres_url])
    assert again.exit_code != 0 and "already holds users" in again.output
    assert raw_database.execute(postgres_url, "SELECT count(*) FROM users") == [(2,)]


def test_migrate_data_says_what_it_needs(tmp_path):
    runner = CliRunner(env={"MELODYBOT_DATABASE_URL": None})
    result = runner.invoke(main, ["migrate-data", "--from", str(tmp_path / "x.sqlite3")])
    assert result.exit_code != 0 and "--to postgresql://" in result.output
    result = runner.invoke(
        main, ["migrate-data", "--from", str(tmp_path / "x.sqlite3"), "--to", "postgresql://h/d"]
    )
    assert result.exit_code != 0 and "no database at" in result.output
