"""Storage throughput and quota-check latency on a real SQLite file.

1. Generations recorded per second: reserve (quota check + insert) and complete with 2 KB of
   MIDI, sequentially and from 100 concurrent tasks.
2. p50/p95 latency of the quota check + record with 100 concurrent users, each asking 10 times.

    python -m bench.bench_storage --help
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import report
from storage import Limits, QuotaExceeded, Repository

MIDI = bytes(2048)


async def record(repo: Repository, user, i: int) -> None:
    generation_id = await repo.reserve_generation(
        user, "bench", "chat", f"C4 D4 E4 #{i}", {"i": i}, "esac-lstm", "v1", i
    )
    await repo.complete_generation(generation_id, MIDI, "C", 128)


async def throughput(path: Path, count: int, concurrency: int) -> float:
    async with await Repository.open(path, defaults=Limits(10**9, 0)) as repo:
        users = [await repo.upsert_user("bench", str(u), f"user{u}") for u in range(concurrency)]
        started = time.perf_counter()

        async def worker(w: int) -> None:
            for i in range(w, count, concurrency):
                await record(repo, users[w], i)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return count / (time.perf_counter() - started)


async def quota_latency(path: Path, users: int, requests_each: int) -> list[float]:
    async with await Repository.open(path, defaults=Limits(daily_quota=5, cooldown_s=0)) as repo:
        people = [await repo.upsert_user("bench", f"q{u}", f"q{u}") for u in range(users)]
        latencies: list[float] = []

        async def ask(user) -> None:
            for i in range(requests_each):
                started = time.perf_counter()
                with contextlib.suppress(QuotaExceeded):
                    await repo.reserve_generation(user, "bench", "c", "C4", {}, "m", "v", i)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(ask(p) for p in people))
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="generations to record")
    parser.add_argument("--users", type=int, default=100, help="concurrent users")
    parser.add_argument("--requests", type=int, default=10, help="requests per user")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        sequential = asyncio.run(throughput(Path(scratch) / "a.sqlite3", args.count, 1))
        concurrent = asyncio.run(throughput(Path(scratch) / "b.sqlite3", args.count, args.users))
        latencies = asyncio.run(
            quota_latency(Path(scratch) / "c.sqlite3", args.users, args.requests)
        )
    p50 = statistics.median(latencies) * 1000
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000
    rows = [
        ("measure", "value"),
        ("generations recorded per second, one task", f"{sequential:,.0f}/s"),
        (f"generations recorded per second, {args.users} tasks", f"{concurrent:,.0f}/s"),
        (f"quota check + record, {args.users} concurrent users: p50", f"{p50:.1f} ms"),
        (f"quota check + record, {args.users} concurrent users: p95", f"{p95:.1f} ms"),
    ]
    report(
        "Storage (aiosqlite, WAL, one file)",
        rows,
        {
            "bench": "storage",
            "per_s_sequential": round(sequential),
            "per_s_concurrent": round(concurrent),
            "quota_p50_ms": round(p50, 2),
            "quota_p95_ms": round(p95, 2),
            "users": args.users,
        },
    )


if __name__ == "__main__":
    main()
