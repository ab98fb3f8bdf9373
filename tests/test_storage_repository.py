"""The repository on a real SQLite file and a real PostgreSQL server: users, melodies, limits,
bans, audit, retention. Every test runs once on each engine."""

from __future__ import annotations

import asyncio

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
from storage.text import MAX_ERROR_CHARS, MAX_NAME_CHARS, MAX_REASON_CHARS, MAX_REQUEST_CHARS
from tests import raw_database

T0 = 1_700_000_000.0
DAY = 86_400.0


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def repo(database_target, clock):
    defaults = Limits(daily_quota=5, cooldown_s=0, max_bars=32, max_seed_notes=16)
    async with await Repository.open(database_target, defaults=defaults, clock=clock) as repository:
        yield repository


async def _melody(repo, user, chat="chat-1", text="C4 D4", platform="discord"):
    melody_id = await repo.reserve_melody(
        user, platform, chat, text, {"seed": [[60, 4]], "bars": 8}, "esac-lstm", "v1", 42
    )
    assert await repo.complete_melody(melody_id, b"MThd" + bytes(8), "G", 128)
    return melody_id


async def test_users_are_upserted_by_platform_id(repo, clock):
    first = await repo.upsert_user("discord", "111", "Ann")
    clock.now += 60
    again = await repo.upsert_user("discord", "111", "Ann B.")
    other = await repo.upsert_user("telegram", "111", "Ann")
    assert again.id == first.id and again.display_name == "Ann B."
    assert (again.first_seen, again.last_seen) == (T0, T0 + 60)
    assert other.id != first.id
    assert await repo.get_user(first.id) == again
    assert await repo.find_user("discord", "@ann b.") == again
    assert await repo.find_user("discord", "111") == again
    assert await repo.find_user("discord", "nobody") is None


async def test_over_long_and_odd_text_is_capped_not_refused(repo):
    user = await repo.upsert_user("discord", "1", "N" * 5000 + "\x00")
    assert len(user.display_name) == MAX_NAME_CHARS and user.display_name.endswith("…")
    assert (await repo.upsert_user("discord", "2", "   ")).display_name == "?"
    lone_surrogate = "C4 \ud800 D4"
    melody_id = await repo.reserve_melody(
        user, "discord", "c", lone_surrogate + "x" * 5000, {"t": "\ud800"}, "m", "v", 1
    )
    stored = await repo.get_melody(melody_id)
    assert len(stored.request_text) == MAX_REQUEST_CHARS
    assert stored.request_text.startswith("C4 ? D4")
    ban = await repo.ban("discord", "c", user, "mod", "r" * 5000)
    assert len(ban.reason) == MAX_REASON_CHARS


async def test_user_text_is_data_never_sql(repo):
    nasty = "Robert'); DROP TABLE generations;--"
    user = await repo.upsert_user("discord", nasty, nasty)
    melody_id = await _melody(repo, user, chat=nasty, text=nasty)
    stored = await repo.get_melody(melody_id)
    assert (stored.request_text, stored.chat_id, user.display_name) == (nasty, nasty, nasty)
    assert await repo.find_user("discord", nasty) == user


async def test_generation_round_trip_keeps_what_regeneration_needs(repo, clock):
    user = await repo.upsert_user("telegram", "7", "Bo")
    melody_id = await repo.reserve_melody(
        user,
        "telegram",
        "-100",
        "melody C4 E4 G4 bars=8",
        {"bars": 8, "seed": [60, 64, 67]},
        "esac-lstm",
        "2024.1",
        2**63 - 1,
    )
    pending = await repo.get_melody(melody_id)
    assert (pending.status, pending.midi, pending.completed_at) == ("pending", None, None)
    clock.now += 2
    assert await repo.complete_melody(melody_id, b"MThd\x00\x01", "Em", 64)
    done = await repo.get_melody(melody_id)
    assert done.status == "done" and done.midi == b"MThd\x00\x01" and done.completed_at == T0 + 2
    assert done.request == {"bars": 8, "seed": [60, 64, 67]}
    assert (done.model_name, done.model_version, done.rng_seed) == (
        "esac-lstm",
        "2024.1",
        2**63 - 1,
    )
    assert (done.melody_key, done.steps, done.platform, done.chat_id) == (
        "Em",
        64,
        "telegram",
        "-100",
    )
    assert not await repo.complete_melody(melody_id, b"other")  # no second ending
    assert await repo.get_melody(10**6) is None


async def test_failures_keep_their_error_and_give_the_quota_slot_back(repo):
    user = await repo.upsert_user("discord", "1", "Ann")
    ids = [await _melody(repo, user) for _ in range(4)]
    last = await repo.reserve_melody(user, "discord", "chat-1", "x", {}, "m", "v", 1)
    with pytest.raises(QuotaExceeded):
        await repo.reserve_melody(user, "discord", "chat-1", "x", {}, "m", "v", 1)
    assert await repo.fail_melody(last, "RuntimeError: " + "e" * 5000)
    failed = await repo.get_melody(last)
    assert failed.status == "failed" and failed.midi is None
    assert failed.error.startswith("RuntimeError") and len(failed.error) == MAX_ERROR_CHARS
    assert not await repo.complete_melody(last, b"late")
    assert await repo.reserve_melody(user, "discord", "chat-1", "x", {}, "m", "v", 1) > max(ids)


async def test_quota_is_a_rolling_day_per_user_and_chat(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    for i in range(5):
        clock.now = T0 + i * 3600
        await _melody(repo, ann)
    with pytest.raises(QuotaExceeded) as refused:
        await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1)
    assert refused.value.quota == 5 and refused.value.resets_at == T0 + DAY
    await _melody(repo, bob)  # someone else
    await _melody(repo, ann, chat="chat-2")  # somewhere else
    clock.now = T0 + DAY + 1  # the first slot has freed, and only that one
    await _melody(repo, ann)
    with pytest.raises(QuotaExceeded) as again:
        await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1)
    assert again.value.resets_at == T0 + 3600 + DAY


async def test_lowered_quota_reports_when_enough_slots_free(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    for i in range(5):
        clock.now = T0 + i * 60
        await _melody(repo, ann)
    await repo.set_limit("discord", "chat-1", "daily_quota", 2, "mod")
    with pytest.raises(QuotaExceeded) as refused:
        await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1)
    assert refused.value.resets_at == T0 + 3 * 60 + DAY  # 4th oldest out: 1 left, room


async def test_cooldown_counts_from_the_last_accepted_request(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    await repo.set_limit(GLOBAL, GLOBAL, "cooldown_s", 30, "owner")
    await _melody(repo, ann)
    clock.now += 10
    with pytest.raises(CooldownActive) as refused:
        await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1)
    assert refused.value.seconds_left == pytest.approx(20)
    await _melody(repo, ann, chat="chat-2")  # cooldown is per chat
    clock.now += 20
    await _melody(repo, ann)


async def test_chat_override_beats_platform_beats_global_beats_code_default(repo):
    assert await repo.effective_limits("discord", "g1") == repo.defaults
    await repo.set_limit(GLOBAL, GLOBAL, "max_bars", 16, "owner")
    await repo.set_limit("discord", GLOBAL, "max_bars", 24, "owner")
    await repo.set_limit("discord", "g1", "max_bars", 64, "mod")
    await repo.set_limit("discord", "g1", "daily_quota", 9, "mod")
    assert (await repo.effective_limits("discord", "g1")).max_bars == 64
    assert (await repo.effective_limits("discord", "g1")).daily_quota == 9
    assert (await repo.effective_limits("discord", "g2")).max_bars == 24
    assert (await repo.effective_limits("telegram", "g1")).max_bars == 16
    assert (await repo.effective_limits("telegram", "g1")).max_seed_notes == 16  # code default
    assert await repo.unset_limit("discord", "g1", "max_bars", "mod") == 64
    assert (await repo.effective_limits("discord", "g1")).max_bars == 24
    assert await repo.unset_limit("discord", "g1", "max_bars", "mod") is None


async def test_a_hand_written_bad_limit_row_is_ignored_not_fatal(repo, database_target):
    raw_database.execute(
        database_target,
        "INSERT INTO limits VALUES ('discord', 'g', 'colour', 3, 0, 'admin'),"
        " ('discord', 'g', 'enabled', 7, 0, 'admin'),"
        " ('discord', 'g', 'max_bars', 8, 0, 'admin')",
    )
    limits = await repo.effective_limits("discord", "g")
    assert limits.enabled and limits.max_bars == 8


async def test_bad_limits_are_refused_before_the_database(repo):
    for name, value in [("nonsense", 1), ("daily_quota", -1), ("enabled", 2), ("cooldown_s", 1.5)]:
        with pytest.raises(ValueError):
            await repo.set_limit("discord", "g", name, value, "mod")
    with pytest.raises(ValueError):
        await repo.set_limit(GLOBAL, "g", "daily_quota", 1, "mod")  # a chat needs its platform
    assert await repo.audit_log("discord", "g") == []


async def test_disabled_chat_refuses_and_can_be_enabled_again(repo):
    ann = await repo.upsert_user("telegram", "1", "Ann")
    assert await repo.set_enabled("telegram", "-5", False, "mod") is None
    assert not (await repo.effective_limits("telegram", "-5")).enabled
    with pytest.raises(ChatDisabled):
        await repo.reserve_melody(ann, "telegram", "-5", "x", {}, "m", "v", 1)
    await _melody(repo, ann, chat="-6", platform="telegram")
    assert await repo.set_enabled("telegram", "-5", True, "mod") is False
    await _melody(repo, ann, chat="-5", platform="telegram")


async def test_every_admin_action_leaves_an_audit_row_with_old_and_new(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    await repo.set_limit("discord", "g", "daily_quota", 10, "Mod#1")
    clock.now += 1
    await repo.set_limit("discord", "g", "daily_quota", 20, "Mod#1")
    await repo.unset_limit("discord", "g", "daily_quota", "Mod#1")
    await repo.set_enabled("discord", "g", False, "Mod#2")
    await repo.set_enabled("discord", "g", True, "Mod#2")
    await repo.ban("discord", "g", ann, "Mod#2", "spam", 3600)
    await repo.ban("discord", "g", ann, "Mod#2", "more spam")
    await repo.unban("discord", "g", ann, "Mod#1")
    assert not await repo.unban("discord", "g", ann, "Mod#1")  # nothing to lift: no row
    entries = await repo.audit_log("discord", "g", limit=50)
    rows = [(e.actor, e.action, e.target, e.old_value, e.new_value) for e in reversed(entries)]
    assert rows == [
        ("Mod#1", "set daily_quota", "", None, "10"),
        ("Mod#1", "set daily_quota", "", "10", "20"),
        ("Mod#1", "unset daily_quota", "", "20", None),
        ("Mod#2", "set enabled", "", None, "0"),
        ("Mod#2", "set enabled", "", "0", "1"),
        ("Mod#2", "ban", "Ann (1)", None, "banned until 2023-11-14 23:13 UTC: spam"),
        (
            "Mod#2",
            "ban",
            "Ann (1)",
            "banned until 2023-11-14 23:13 UTC: spam",
            "banned permanent: more spam",
        ),
        ("Mod#1", "unban", "Ann (1)", "banned permanent: more spam", None),
    ]
    assert entries[-1].created_at == T0 and entries[0].created_at == T0 + 1
    assert [e.id for e in await repo.audit_log("discord", "g", limit=2, offset=1)] == [
        entries[1].id,
        entries[2].id,
    ]
    assert await repo.audit_log("discord", "other") == []


async def test_audit_log_is_append_only(repo, database_target):
    await repo.set_enabled("discord", "g", False, "mod")
    for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(raw_database.REFUSED, match="append-only"):
            raw_database.execute(database_target, sql)
    assert len(await repo.audit_log("discord", "g")) == 1


async def test_bans_expire_and_apply_to_their_scope_only(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    ban = await repo.ban("discord", "g1", ann, "mod", "flooding", duration_s=3600)
    assert ban.expires_at == T0 + 3600
    with pytest.raises(Banned) as refused:
        await repo.reserve_melody(ann, "discord", "g1", "x", {}, "m", "v", 1)
    assert refused.value.ban.reason == "flooding"
    await _melody(repo, ann, chat="g2")  # other guilds are fine
    assert await repo.active_ban("discord", "g1", ann, now=T0 + 3599) == ban
    assert await repo.active_ban("discord", "g1", ann, now=T0 + 3600) is None  # expired
    clock.now = T0 + 3600
    await _melody(repo, ann, chat="g1")


async def test_platform_ban_covers_every_chat_and_chat_unban_cannot_lift_it(repo):
    ann = await repo.upsert_user("telegram", "1", "Ann")
    everywhere = await repo.ban("telegram", GLOBAL, ann, "owner", "abuse")
    for chat in ("-1", "-2"):
        assert await repo.active_ban("telegram", chat, ann) == everywhere
    assert not await repo.unban("telegram", "-1", ann, "chat mod")
    assert await repo.active_ban("telegram", "-1", ann) == everywhere
    assert await repo.unban("telegram", GLOBAL, ann, "owner")
    assert await repo.active_ban("telegram", "-1", ann) is None
    with pytest.raises(ValueError):
        await repo.ban("discord", "g", ann, "mod")  # a Telegram user on Discord
    with pytest.raises(ValueError):
        await repo.ban("telegram", "-1", ann, "mod", duration_s=0)


async def test_the_longest_ban_in_force_is_the_one_reported(repo):
    ann = await repo.upsert_user("discord", "1", "Ann")
    await repo.ban("discord", "g", ann, "mod", "short", 60)
    forever = await repo.ban("discord", GLOBAL, ann, "owner", "forever")
    await repo.ban("discord", "g", ann, "mod", "medium", 3600)
    assert await repo.active_ban("discord", "g", ann) == forever


async def test_history_pages_newest_first_and_only_finished(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    await repo.set_limit(GLOBAL, GLOBAL, "daily_quota", 100, "owner")
    ids = []
    for i in range(12):
        clock.now = T0 + i
        ids.append(await _melody(repo, ann, text=f"melody {i}"))
    failed = await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1)
    await repo.fail_melody(failed, "boom")
    await repo.reserve_melody(ann, "discord", "chat-1", "pending", {}, "m", "v", 1)
    await _melody(repo, bob)
    pages = [await repo.history(ann, limit=5, offset=o) for o in (0, 5, 10, 15)]
    assert [[g.id for g in page] for page in pages] == [
        ids[11:6:-1],
        ids[6:1:-1],
        ids[1::-1],
        [],
    ]
    assert await repo.count_history(ann) == 12
    assert await repo.history(ann.id, limit=-3) == []


async def test_forget_me_deletes_history_but_not_bans_quota_or_audit(repo):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    ids = [await _melody(repo, ann) for _ in range(5)]
    await _melody(repo, bob)
    await repo.ban("discord", "other", ann, "mod", "spam")
    assert await repo.forget_user(ann) == 5
    assert await repo.history(ann) == [] and await repo.get_melody(ids[0]) is None
    assert await repo.count_history(bob) == 1
    assert await repo.active_ban("discord", "other", ann) is not None
    assert len(await repo.audit_log("discord", "other")) == 1
    with pytest.raises(QuotaExceeded):  # forgetting is no way round the quota
        await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1)
    assert await repo.forget_user(ann) == 0


async def test_ids_are_never_reused_after_deletion(repo):
    ann = await repo.upsert_user("discord", "1", "Ann")
    first = await _melody(repo, ann)
    await repo.forget_user(ann)
    assert await _melody(repo, ann) > first


async def test_retention_keeps_last_n_per_user_or_n_days(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    await repo.set_limit(GLOBAL, GLOBAL, "daily_quota", 100, "owner")
    ann_ids = []
    for day in range(6):
        clock.now = T0 + day * DAY
        ann_ids.append(await _melody(repo, ann))
    bob_id = await _melody(repo, bob)
    in_flight = await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1)
    assert await repo.apply_retention(keep_last=4) == 2
    assert [g.id for g in await repo.history(ann, limit=10)] == ann_ids[:1:-1]
    assert await repo.apply_retention(keep_days=1.5) == 2  # days 2 and 3; day 5 is "now"
    assert [g.id for g in await repo.history(ann, limit=10)] == ann_ids[:3:-1]
    assert (await repo.get_melody(bob_id)) is not None
    assert (await repo.get_melody(in_flight)).status == "pending"
    assert await repo.apply_retention() == 0


async def test_stale_pending_melodies_are_failed_and_free_their_slot(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    stuck = [
        await repo.reserve_melody(ann, "discord", "chat-1", "x", {}, "m", "v", 1) for _ in range(5)
    ]
    clock.now += 600
    assert await repo.fail_stale_pending(older_than_s=3600) == 0
    clock.now += 3600
    assert await repo.fail_stale_pending(older_than_s=3600) == 5
    assert {(await repo.get_melody(i)).status for i in stuck} == {"failed"}
    await _melody(repo, ann)


async def test_a_dead_process_s_melodies_are_taken_over_once_whoever_asks_at_once(
    repo, clock, database_target
):
    ann = await repo.upsert_user("telegram", "1", "Ann")
    await repo.set_limit(GLOBAL, GLOBAL, "daily_quota", 100, "owner")
    left = [
        await repo.reserve_melody(
            ann, "telegram", "5", "x", {}, "m", "v", 1, owner="dead", reply_address=f"5:{n}"
        )
        for n in range(20)
    ]
    await repo.reserve_melody(ann, "telegram", "5", "x", {}, "m", "v", 1, owner="alive")
    await repo.reserve_melody(ann, "discord", "g", "x", {}, "m", "v", 1, owner="dead")
    assert await repo.unsent_owners("telegram") == {"dead", "alive"}
    async with await Repository.open(database_target, clock=clock) as other:
        mine, theirs = await asyncio.gather(
            repo.take_over("telegram", "dead", "me"), other.take_over("telegram", "dead", "you")
        )
    assert sorted(g.id for g in mine + theirs) == left  # each melody once, none twice
    assert {g.owner for g in mine} <= {"me"} and {g.owner for g in theirs} <= {"you"}
    assert [g.reply_address for g in sorted(mine + theirs, key=lambda g: g.id)][:2] == [
        "5:0",
        "5:1",
    ]
    owners = await repo.unsent_owners("telegram")
    assert "dead" not in owners and "alive" in owners and owners <= {"alive", "me", "you"}
    assert await repo.unsent_owners("discord") == {"dead"}  # another platform's: left alone


async def test_stats_count_finished_melodies_per_day_and_user(repo, clock):
    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    await repo.set_limit(GLOBAL, GLOBAL, "daily_quota", 100, "owner")
    for offset, user in [(0, ann), (10, ann), (DAY, bob), (DAY + 10, ann), (2 * DAY, ann)]:
        clock.now = T0 + offset
        await _melody(repo, user)
    await _melody(repo, bob, chat="elsewhere")
    stats = await repo.stats("discord", "chat-1", days=7)
    assert stats["per_day"] == [("2023-11-16", 1), ("2023-11-15", 2), ("2023-11-14", 2)]
    assert stats["per_user"] == [("Ann", 4), ("Bob", 1)]
    assert (await repo.stats("discord", "chat-1", days=1))["per_user"] == [("Ann", 2)]
    assert (await repo.stats("discord", GLOBAL))["per_user"] == [("Ann", 4), ("Bob", 2)]
    assert await repo.stats("telegram", GLOBAL) == {"per_day": [], "per_user": []}


async def test_closed_repository_refuses_work(database_target):
    repository = await Repository.open(database_target)
    await repository.close()
    await repository.close()
    with pytest.raises(RuntimeError, match="closed"):
        await repository.effective_limits("discord", "g")


async def test_a_resend_counts_towards_the_cooldown_never_the_quota(database_target, clock):
    defaults = Limits(daily_quota=2, cooldown_s=60, max_bars=32, max_seed_notes=16)
    async with await Repository.open(database_target, defaults=defaults, clock=clock) as repo:
        ann = await repo.upsert_user("discord", "1", "ann")
        await _melody(repo, ann)
        clock.now += 61
        await repo.admit_resend(ann, "discord", "chat-1")  # a re-send …
        with pytest.raises(CooldownActive):
            await _melody(repo, ann)  # … counts towards the cooldown …
        with pytest.raises(CooldownActive):
            await repo.admit_resend(ann, "discord", "chat-1")
        clock.now += 61
        await _melody(repo, ann)  # … but took no slot: the second melody of two still fits
        clock.now += 61
        with pytest.raises(QuotaExceeded):
            await _melody(repo, ann)
        await repo.admit_resend(ann, "discord", "chat-1")  # and the quota does not stop re-sends


async def test_size_limits_are_checked_in_the_same_step_as_the_quota(repo, database_target):
    from storage import TooLong, TooManySeedNotes

    user = await repo.upsert_user("discord", "1", "Ann")
    ask = (user, "discord", "chat-1", "C4", {"seed": [[60, 4]]}, "esac-lstm", "v1", 1)
    with pytest.raises(TooLong) as too_long:
        await repo.reserve_melody(*ask, bars=33, seed_notes=1)
    assert too_long.value.max_bars == 32
    with pytest.raises(TooManySeedNotes):
        await repo.reserve_melody(*ask, bars=8, seed_notes=17)
    await repo.set_limit("discord", "chat-1", "max_bars", 40, "mod")
    assert await repo.reserve_melody(*ask, bars=40, seed_notes=16)
    assert await repo.count_history(user) == 0  # pending, not refused: the refusals stored nothing
    assert raw_database.execute(database_target, "SELECT count(*) FROM usage") == [(1,)]


async def test_a_deleted_melodys_page_is_gone_whatever_deleted_it(repo, clock):
    from storage.pages import GONE

    ann = await repo.upsert_user("discord", "1", "Ann")
    old, kept = await _melody(repo, ann), await _melody(repo, ann)  # the newer one is kept
    pages = {n: (await repo.get_melody(n)).page_id for n in (kept, old)}
    assert len(set(pages.values())) == 2 and all(len(p) == 16 for p in pages.values())
    assert (await repo.melody_page(pages[old])).melody.id == old
    assert await repo.melody_page("never-was-a-page") is None
    await repo.apply_retention(keep_last=1)  # retention deletes the older one
    assert await repo.melody_page(pages[old]) == GONE
    assert (await repo.melody_page(pages[kept])).melody.id == kept
    await repo.forget_user(ann)
    assert await repo.melody_page(pages[kept]) == GONE


async def test_a_gallery_lists_its_chat_newest_first_names_only_if_asked_no_banned(repo, clock):
    from storage.pages import GONE

    ann = await repo.upsert_user("discord", "1", "Ann")
    bob = await repo.upsert_user("discord", "2", "Bob")
    made = []
    for user in (ann, bob, ann):
        clock.now += 60
        made.append(await _melody(repo, user))
    await _melody(repo, bob, chat="elsewhere")
    gallery = await repo.set_gallery("discord", "chat-1", True, "mod")
    assert gallery.enabled and not gallery.show_names and len(gallery.page_id) == 16
    entries = await repo.gallery_entries(gallery)
    assert [e.melody.id for e in entries] == made[::-1]
    assert {e.composer for e in entries} == {None}
    page = (await repo.get_melody(made[0])).page_id
    assert (await repo.melody_page(page)).composer is None
    named = await repo.set_gallery("discord", "chat-1", True, "mod", show_names=True)
    assert named.page_id == gallery.page_id  # the address is kept
    assert (await repo.melody_page(page)).composer == "Ann"
    assert [e.composer for e in await repo.gallery_entries(named, limit=2)] == ["Ann", "Bob"]
    await repo.ban("discord", "chat-1", bob, "mod")
    assert [e.melody.id for e in await repo.gallery_entries(named)] == [made[2], made[0]]
    assert await repo.melody_page((await repo.get_melody(made[1])).page_id) == GONE
    off = await repo.set_gallery("discord", "chat-1", False, "mod")
    assert not off.enabled and (await repo.gallery(gallery.page_id)) == off
    assert await repo.chat_gallery("discord", "elsewhere") is None
    switched = [
        (e.old_value, e.new_value)
        for e in await repo.audit_log("discord", "chat-1")
        if e.action == "set gallery"
    ]
    assert switched == [("on, with names", "off"), ("on", "on, with names"), (None, "on")]
