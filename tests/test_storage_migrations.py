"""Schema versions: fresh files, repeated start-ups, and upgrading a file that holds data."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from storage import QuotaExceeded, Repository, db


def _raw(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_a_fresh_file_is_at_the_latest_version_with_safe_pragmas(tmp_path):
    path = tmp_path / "new" / "bot.sqlite3"
    async with await Repository.open(path) as repo:
        connection = repo._db
        assert await db.schema_version(connection) == db.latest_version() >= 2
        pragmas = {}
        for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous"):
            async with connection.execute(f"PRAGMA {name}") as cursor:
                pragmas[name] = (await cursor.fetchone())[0]
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30_000,
        "synchronous": 2,
    }  # 2 = FULL


async def test_migrating_again_changes_nothing(tmp_path):
    path = tmp_path / "bot.sqlite3"
    async with await Repository.open(path) as repo:
        user = await repo.upsert_user("discord", "1", "Ann")
        before = await asyncio.to_thread(_schema_sql, path)
        assert await db.migrate(repo._db) == db.latest_version()
    async with await Repository.open(path) as repo:
        assert await repo.get_user(user.id) == user
    assert await asyncio.to_thread(_schema_sql, path) == before


def _schema_sql(path) -> list[str]:
    with _raw(path) as raw:
        return [row[0] for row in raw.execute("SELECT sql FROM sqlite_master ORDER BY name")]


async def test_concurrent_start_ups_apply_each_migration_once(tmp_path):
    path = tmp_path / "bot.sqlite3"
    repos = await asyncio.gather(*(Repository.open(path) for _ in range(4)))
    for repo in repos:
        assert await db.schema_version(repo._db) == db.latest_version()
        await repo.close()


async def test_a_version_1_file_with_data_is_upgraded_intact(tmp_path):
    path = tmp_path / "old.sqlite3"
    connection = await db.connect(path)
    try:
        assert await db.migrate(connection, target=1) == 1
        await connection.executescript(
            """
            BEGIN;
            INSERT INTO users VALUES (1, 'discord', '111', 'Ann', 1.0, 2.0);
            INSERT INTO generations (id, user_id, platform, chat_id, request_text, request_json,
                                     model_name, model_version, rng_seed, status, created_at,
                                     completed_at, midi)
            VALUES (7, 1, 'discord', 'g', 'C4 D4', '{"bars": 8}', 'esac-lstm', 'v0', 99, 'done',
                    1.5, 1.6, X'4D546864');
            INSERT INTO usage (user_id, platform, chat_id, created_at, generation_id)
            VALUES (1, 'discord', 'g', 1.5, 7);
            INSERT INTO limits VALUES ('discord', 'g', 'daily_quota', 3, 1.0, 'mod');
            INSERT INTO bans (user_id, platform, chat_id, banned_by, reason, created_at)
            VALUES (1, 'discord', 'other', 'mod', 'spam', 1.0);
            INSERT INTO audit_log (platform, chat_id, actor, action, target, old_value,
                                   new_value, created_at)
            VALUES ('discord', 'g', 'mod', 'set_limit', 'daily_quota', NULL, '3', 1.0);
            COMMIT;
            """
        )
    finally:
        await connection.close()
    with _raw(path) as raw:
        columns = {row[1] for row in raw.execute("PRAGMA table_info(generations)")}
    assert "melody_key" not in columns

    async with await Repository.open(path) as repo:
        assert await db.schema_version(repo._db) == db.latest_version()
        old = await repo.get_melody(7)
        assert (old.request_text, old.request, old.midi, old.rng_seed) == (
            "C4 D4",
            {"bars": 8},
            b"MThd",
            99,
        )
        assert (old.melody_key, old.steps) == (None, None)
        ann = await repo.get_user(1)
        assert ann.display_name == "Ann"
        assert (await repo.effective_limits("discord", "g")).daily_quota == 3
        assert (await repo.active_ban("discord", "other", ann)).reason == "spam"
        assert [e.new_value for e in await repo.audit_log("discord", "g")] == ["3"]
        # New columns work, ids carry on, and the old request still counts towards the quota.
        new_id = await repo.reserve_melody(ann, "discord", "g", "E4", {}, "m", "v1", 1, now=1e3)
        assert await repo.complete_melody(new_id, b"MThd", "Em", 64)
        assert (await repo.get_melody(new_id)).melody_key == "Em"
        assert new_id > 7
        await repo.reserve_melody(ann, "discord", "g", "F4", {}, "m", "v1", 2, now=2e3)
        with pytest.raises(QuotaExceeded):
            await repo.reserve_melody(ann, "discord", "g", "G4", {}, "m", "v1", 3, now=3e3)


async def test_a_file_from_newer_code_is_refused_untouched(tmp_path):
    path = tmp_path / "future.sqlite3"
    async with await Repository.open(path):
        pass
    with _raw(path) as raw:
        raw.execute(f"PRAGMA user_version = {db.latest_version() + 1}")
    with pytest.raises(db.SchemaTooNew):
        await Repository.open(path)
    with _raw(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == db.latest_version() + 1


async def test_a_failing_migration_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "bot.sqlite3"
    connection = await db.connect(path)
    try:
        await db.migrate(connection, target=1)
        first = db.migrations()[0]
        broken = db.Migration(2, "broken", "ALTER TABLE generations ADD COLUMN x TEXT;\nNOPE;\n")
        monkeypatch.setattr(db, "migrations", lambda: (first, broken))
        with pytest.raises(sqlite3.OperationalError):
            await db.migrate(connection)
        assert await db.schema_version(connection) == 1
        assert not connection.in_transaction
    finally:
        await connection.close()
    with _raw(path) as raw:
        assert "x" not in {row[1] for row in raw.execute("PRAGMA table_info(generations)")}


def test_shipped_migrations_are_numbered_without_gaps_and_split_cleanly():
    migrations = db.migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        statements = db.split_statements(migration.sql)
        assert statements and all(sqlite3.complete_statement(s) for s in statements)
    triggers = [s for s in db.split_statements(migrations[0].sql) if "TRIGGER" in s]
    assert len(triggers) == 2 and all(s.rstrip().endswith("END;") for s in triggers)
    with pytest.raises(db.StorageError):
        db.split_statements("CREATE TABLE t (x)")
