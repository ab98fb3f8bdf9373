"""A separate OS process that writes melodies into a database, for the multi-process tests.

Usage: python -m tests.storage_writer DB_PATH NAME COUNT   (COUNT 0 = until killed)
Prints each generation id after its transaction has committed.
"""

from __future__ import annotations

import asyncio
import sys

from storage import Limits, Repository


async def write(path: str, name: str, count: int) -> None:
    unlimited = Limits(daily_quota=10**9, cooldown_s=0)
    async with await Repository.open(path, defaults=unlimited) as repo:
        user = await repo.upsert_user("test", name, name)
        written = 0
        while count == 0 or written < count:
            generation_id = await repo.reserve_generation(
                user, "test", "chat", f"C4 D4 #{written}", {"n": written}, "m", "1", written
            )
            await repo.complete_generation(generation_id, b"MThd" + bytes(64), "C", 16)
            print(generation_id, flush=True)
            written += 1


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1], sys.argv[2], int(sys.argv[3])))
