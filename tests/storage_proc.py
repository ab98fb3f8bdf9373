"""A separate OS process using the repository, as the Discord and Telegram front-ends do.

Usage: python tests/storage_proc.py write DB NAME COUNT   (COUNT 0 = until killed)
       python tests/storage_proc.py quota DB NAME COUNT

Both print ``ready`` once the database is open and wait for a line on stdin, so a test can start
several processes at the same instant. ``write`` prints each melody's id after its commit;
``quota`` tries COUNT requests for one shared user and prints how many were accepted.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Limits, QuotaExceeded, Repository


async def write(path: str, name: str, count: int) -> None:
    async with await Repository.open(path, defaults=Limits(daily_quota=10**9, cooldown_s=0)) as r:
        user = await r.upsert_user("test", name, name)
        print("ready", flush=True)
        sys.stdin.readline()
        n = 0
        while count == 0 or n < count:
            n += 1
            melody_id = await r.reserve_melody(
                user, "test", "chat", f"{name} {n}", {"n": n}, "lstm", "v1", n
            )
            await r.complete_melody(melody_id, b"MThd" + n.to_bytes(4, "big"), "C", n)
            print(melody_id, flush=True)
            # A bot does other work between melodies; without this pause one process can take
            # the write lock again before the other's busy handler wakes, and never let it in.
            await asyncio.sleep(0.002)


async def quota(path: str, name: str, count: int) -> None:
    async with await Repository.open(path, defaults=Limits(daily_quota=5, cooldown_s=0)) as r:
        user = await r.upsert_user("test", "shared", "Shared")
        print("ready", flush=True)
        sys.stdin.readline()
        accepted = 0
        for n in range(count):
            try:
                await r.reserve_melody(user, "test", "chat", name, {"n": n}, "lstm", "v1", n)
                accepted += 1
            except QuotaExceeded:
                pass
        print(accepted, flush=True)


if __name__ == "__main__":
    mode, db_path, who, how_many = sys.argv[1:5]
    asyncio.run({"write": write, "quota": quota}[mode](db_path, who, int(how_many)))
