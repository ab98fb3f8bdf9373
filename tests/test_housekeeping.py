"""Housekeeping while the bot runs, on a real SQLite file: abandoned melodies give back their
quota slot and retention runs, round after round, without a restart."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.housekeeping import ABANDONED_AFTER_S, Housekeeping
from storage import Limits, QuotaExceeded, Repository

MIDI = b"MThd" + bytes(8)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def _open(tmp_path, clock: Clock, quota: int) -> Repository:
    defaults = Limits(daily_quota=quota, cooldown_s=0, max_bars=32, max_seed_notes=16)
    return await Repository.open(tmp_path / "bot.sqlite3", defaults=defaults, clock=clock)


async def _reserve(repo: Repository, user) -> int:
    return await repo.reserve_melody(user, "telegram", "c", "C4", {"seed": []}, "m", "v", 1)


async def _until(condition, rounds: int = 200) -> None:
    for _ in range(rounds):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("housekeeping never got there")


def _settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, housekeeping_every_s=0.02, **values)


async def test_an_abandoned_melody_gives_its_slot_back_while_the_bot_runs(tmp_path):
    clock = Clock()
    async with await _open(tmp_path, clock, quota=1) as repo:
        user = await repo.upsert_user("telegram", "7", "ann")
        abandoned = await _reserve(repo, user)  # its process is killed: it stays pending
        with pytest.raises(QuotaExceeded):
            await _reserve(repo, user)
        keeper = Housekeeping(repo, _settings(tmp_path))
        await keeper.start()
        try:
            clock.now += ABANDONED_AFTER_S - 60
            await asyncio.sleep(0.1)  # a few rounds: too young to be abandoned
            assert (await repo.get_melody(abandoned)).status == "pending"
            clock.now += 120

            async def released() -> bool:
                return (await repo.get_melody(abandoned)).status == "failed"

            await _until(released)
            assert await repo.complete_melody(await _reserve(repo, user), MIDI, "C", 16)
        finally:
            await keeper.stop()


async def test_retention_runs_while_the_bot_runs(tmp_path):
    clock = Clock()
    async with await _open(tmp_path, clock, quota=50) as repo:
        user = await repo.upsert_user("telegram", "7", "ann")
        keeper = Housekeeping(repo, _settings(tmp_path, keep_last_generations=2))
        await keeper.start()
        try:
            for _ in range(4):
                clock.now += 1
                assert await repo.complete_melody(await _reserve(repo, user), MIDI, "C", 16)

            async def trimmed() -> bool:
                return len(await repo.history(user.id, limit=10)) == 2

            await _until(trimmed)
        finally:
            await keeper.stop()
