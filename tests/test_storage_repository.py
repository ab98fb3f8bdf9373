"""The repository on real SQLite files: users, melodies, limits, bans, audit, retention."""

import asyncio
import sqlite3

import pytest

from storage import (
    GLOBAL,
    Banned,
    ChatDisabled,
    CooldownActive,
    Limits,
    QuotaExceeded,
    Repository,
)
from storage.repository import MAX_NAME_CHARS, MAX_REQUEST_CHARS


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def repo(tmp_path, clock):
    repository = await Repository.open(
        tmp_path / "bot.sqlite3", defaults=Limits(daily_quota=5, cooldown_s=0), clock=clock
    )
    yield repository
    await repository.close()


async def _melody(repo, user, chat="chat-1", text="C4 D4"):
    generation_id = await repo.reserve_generation(
        user, "discord", chat, text, {"seed": [[60, 4]]}, "esac-lstm", "v1", 42
    )
    await repo.complete_generation(generation_id, b"MThd-bytes", "C", 32)
    return generation_id


async def test_pragmas_are_set(repo, tmp_path):
    assert (await repo._fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await repo._fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await repo._fetchone("PRAGMA busy_timeout"))[0] == 30000


async def test_users_are_upserted(repo, clock):
    first = await repo.upsert_user("discord", "111", "Ann")
    clock.now += 60
    again = await repo.upsert_user("discord", "111", "Ann B.")
    assert again.id == first.id and again.display_name == "Ann B."
    assert again.first_seen == first.first_seen and again.last_seen == first.last_seen + 60
    other_platform = await repo.upsert_user("telegram", "111", "Ann")
    assert other_platform.id != first.id
    assert (await repo.find_user("discord", "@ann b.")).id == first.id
    assert (await repo.find_user("discord", "111")).id == first.id
    assert await repo.find_user("discord", "nobody") is None


async def test_a_melody_is_stored_with_everything_to_redo_it(repo):
    user = await repo.upsert_user("discord", "1", "Ann")
    generation_id = await _melody(repo, user)
    stored = await repo.get_generation(generation_id)
    assert (stored.status, stored.midi, stored.rng_seed) == ("done", b"MThd-bytes", 42)
    assert stored.request == {"seed": [[60, 4]]}
    assert (stored.model_name, stored.model_version, stored.melody_key) == ("esac-lstm", "v1", "C")
    assert await repo.get_generation(9999) is None


async def test_failures_are_recorded_and_do_not_use_quota(repo):
    user = await repo.upsert_user("discord", "1", "Ann")
    for _ in range(5):
        generation_id = await repo.reserve_generation(user, "discord", "c", "x", {}, "m", "v", 1)
        await repo.fail_generation(generation_id, "renderer crashed " + "!" * 2000)
    failed = await repo.get_generation(generation_id)
    assert failed.status == "failed" and failed.error.startswith("renderer crashed")
    assert len(failed.error) <= 500
    await _melody(repo, user)  # still allowed: failed melodies do not count


async def test_history_pages_newest_first(repo, clock):
    user = await repo.upsert_user("discord", "1", "Ann")
    ids = []
    for _ in range(5):
        clock.now += 1
        ids.append(await _melody(repo, user))
    page1 = await repo.history(user.id, limit=2)
    page2 = await repo.history(user.id, limit=2, offset=2)
    page3 = await repo.history(user.id, limit=2, offset=4)
    assert [g.id for g in page1 + page2 + page3] == ids[::-1]
    assert await repo.count_history(user.id) == 5


async def test_chat_override_beats_global_beats_default(repo):
    assert (await repo.effective_limits("discord", "a")).daily_quota == 5
    await repo.set_limit(GLOBAL, GLOBAL, "daily_quota", 20, "admin")
    await repo.set_limit("discord", "a", "daily_quota", 3, "mod")
    assert (await repo.effective_limits("discord", "a")).daily_quota == 3
    assert (await repo.effective_limits("discord", "b")).daily_quota == 20
    assert (await repo.effective_limits("telegram", "a")).daily_quota == 20
    with pytest.raises(ValueError, match="unknown limit"):
        await repo.set_limit("discord", "a", "volume", 11, "mod")


async def test_quota_cooldown_and_disabled_chat_refuse(repo, clock):
    user = await repo.upsert_user("discord", "1", "Ann")
    await repo.set_limit("discord", "chat-1", "cooldown_s", 30, "mod")
    await _melody(repo, user)
    with pytest.raises(CooldownActive) as cooling:
        await _melody(repo, user)
    assert cooling.value.seconds_left == pytest.approx(30)
    for _ in range(4):
        clock.now += 31
        await _melody(repo, user)
    clock.now += 31
    with pytest.raises(QuotaExceeded) as quota:
        await _melody(repo, user)
    assert quota.value.quota == 5
    clock.now = quota.value.resets_at + 1  # the oldest melody left the 24-hour window
    await _melody(repo, user)
    await repo.set_enabled("discord", "chat-1", False, "mod")
    clock.now += 31
    with pytest.raises(ChatDisabled):
        await _melody(repo, user)


async def test_fifty_concurrent_requests_against_a_quota_of_five(repo):
    user = await repo.upsert_user("discord", "1", "Ann")

    async def attempt(i):
        try:
            await repo.reserve_generation(user, "discord", "c", f"#{i}", {}, "m", "v", i)
            return True
        except QuotaExceeded:
            return False

    results = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert sum(results) == 5


async def test_bans_expire_and_lift(repo, clock):
    mod = "mod#1"
    user = await repo.upsert_user("discord", "1", "Ann")
    await repo.ban("discord", "chat-1", user, mod, "spamming", duration_s=3600)
    with pytest.raises(Banned) as banned:
        await _melody(repo, user)
    assert banned.value.ban.reason == "spamming"
    await _melody(repo, user, chat="chat-2")  # a ban is per chat
    clock.now += 3601
    await _melody(repo, user)  # expired
    await repo.ban("discord", GLOBAL, user, mod, "everywhere")
    with pytest.raises(Banned):
        await _melody(repo, user, chat="chat-3")
    assert await repo.unban("discord", "chat-3", user, mod)
    assert await repo.active_ban("discord", "chat-3", user.id) is None
    assert not await repo.unban("discord", "chat-3", user, mod)  # nothing left to lift


async def test_every_admin_action_is_audited_and_the_log_is_append_only(repo, tmp_path):
    user = await repo.upsert_user("telegram", "9", "Bob")
    await repo.set_limit("telegram", "g", "daily_quota", 10, "mod")
    await repo.set_limit("telegram", "g", "daily_quota", 7, "mod")
    await repo.set_enabled("telegram", "g", False, "mod")
    await repo.ban("telegram", "g", user, "mod", "rude", duration_s=60)
    await repo.unban("telegram", "g", user, "mod")
    entries = await repo.audit_log("telegram", "g", limit=10)
    assert [(e.action, e.old_value, e.new_value) for e in entries][::-1] == [
        ("set daily_quota", None, "10"),
        ("set daily_quota", "10", "7"),
        ("set enabled", None, "0"),
        ("ban", None, entries[1].new_value),
        ("unban", "banned", None),
    ]
    assert entries[1].target == "Bob" and "rude" in entries[1].new_value
    raw = sqlite3.connect(tmp_path / "bot.sqlite3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM audit_log")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE audit_log SET actor = 'someone else'")
    raw.close()


async def test_forget_me_deletes_only_that_users_melodies(repo):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    for _ in range(3):
        await _melody(repo, ann)
    await _melody(repo, bob)
    await repo.ban("discord", "chat-1", ann, "mod")
    assert await repo.forget_user(ann.id) == 3
    assert await repo.history(ann.id) == []
    assert len(await repo.history(bob.id)) == 1
    assert await repo.active_ban("discord", "chat-1", ann.id) is not None  # a ban survives


async def test_retention_keeps_last_n_and_drops_old(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    repo.defaults = Limits(daily_quota=100, cooldown_s=0)
    for _ in range(4):
        clock.now += 1
        await _melody(repo, ann)
    newest_bob = await _melody(repo, bob)
    assert await repo.apply_retention(keep_last=2) == 2
    assert len(await repo.history(ann.id)) == 2
    clock.now += 10 * 86400
    newer = await _melody(repo, ann)
    assert await repo.apply_retention(keep_days=5) == 3
    assert [g.id for g in await repo.history(ann.id)] == [newer]
    assert await repo.get_generation(newest_bob) is None


async def test_overlong_and_hostile_text_is_capped_and_stored_verbatim(repo):
    name = "Robert'); DROP TABLE users;--" + "x" * 500
    user = await repo.upsert_user("discord", "1", name)
    assert len(user.display_name) == MAX_NAME_CHARS
    assert user.display_name.startswith("Robert'); DROP TABLE users;--")
    generation_id = await _melody(repo, user, text="C4 " * 1000)
    stored = await repo.get_generation(generation_id)
    assert len(stored.request_text) == MAX_REQUEST_CHARS and stored.request_text.endswith("…")
    assert (await repo.find_user("discord", "1")).id == user.id  # the users table is still there


async def test_stats_count_per_day_and_user(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    await _melody(repo, ann)
    await _melody(repo, ann)
    clock.now += 86400
    await _melody(repo, bob)
    stats = await repo.stats("discord", "chat-1", days=7)
    assert [n for _, n in stats["per_day"]] == [1, 2]
    assert stats["per_user"] == [("Ann", 2), ("Bob", 1)]
