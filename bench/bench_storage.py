"""How fast the bot's memory is: melodies recorded per second, and the quota check's latency.

Every figure runs on a fresh SQLite file through :class:`storage.Repository`, exactly as the bot
uses it: a melody is recorded as ``reserve_melody`` (ban, switch, quota and cooldown checks
plus the pending row, one transaction) and ``complete_melody`` (the MIDI bytes, another).

    python bench/bench_storage.py --repeats 5 --synchronous FULL NORMAL

prints a table and, last, one JSON line with every number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Limits, Repository, User

MIDI = bytes(1024)  # a 16-bar melody's MIDI file is about this size
NO_LIMITS = Limits(daily_quota=10**9, cooldown_s=0)


async def _record(repo: Repository, user: User, n: int) -> None:
    melody_id = await repo.reserve_melody(
        user, user.platform, "bench-chat", f"melody C4 D4 E4 seed={n}", {"n": n}, "lstm", "v1", n
    )
    await repo.complete_melody(melody_id, MIDI, "C", 128)


async def sequential_rate(path: Path, count: int, synchronous: str) -> float:
    """Melodies per second from one task, one after another."""
    async with await Repository.open(path, defaults=NO_LIMITS, synchronous=synchronous) as repo:
        user = await repo.upsert_user("bench", "solo", "Solo")
        start = time.perf_counter()
        for n in range(count):
            await _record(repo, user, n)
        return count / (time.perf_counter() - start)


async def concurrent_rate(path: Path, count: int, users: int, synchronous: str) -> float:
    """Melodies per second with ``users`` tasks recording at once on one repository."""
    async with await Repository.open(path, defaults=NO_LIMITS, synchronous=synchronous) as repo:
        people = [await repo.upsert_user("bench", str(i), f"User {i}") for i in range(users)]
        each = max(1, count // users)

        async def one(user: User) -> None:
            for n in range(each):
                await _record(repo, user, n)

        start = time.perf_counter()
        await asyncio.gather(*(one(user) for user in people))
        return each * users / (time.perf_counter() - start)


async def reserve_latency(
    path: Path, users: int, rounds: int, synchronous: str
) -> tuple[list[float], list[float]]:
    """Seconds per ``reserve_melody`` call: alone, and with ``users`` users asking at once.

    The concurrent figure is what a user waits when the whole crowd asks in the same instant:
    queueing for the write lock included. The quota sits just above what the run asks for, so
    every call is accepted after the full check against the user's earlier requests.
    """
    limits = Limits(daily_quota=rounds + 10, cooldown_s=0)
    async with await Repository.open(path, defaults=limits, synchronous=synchronous) as repo:
        people = [await repo.upsert_user("bench", str(i), f"User {i}") for i in range(users)]

        async def timed(user: User, n: int) -> float:
            start = time.perf_counter()
            await repo.reserve_melody(user, "bench", "chat", "C4", {"n": n}, "lstm", "v1", n)
            return time.perf_counter() - start

        solo = await repo.upsert_user("bench", "solo", "Solo")
        alone = [await timed(solo, n) for n in range(rounds)]
        crowd: list[float] = []
        for n in range(rounds):
            crowd += await asyncio.gather(*(timed(user, n) for user in people))
        return alone, crowd


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def machine() -> dict[str, str | int]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


async def run(args: argparse.Namespace) -> dict:
    results: dict = {"machine": machine(), "settings": vars(args).copy(), "modes": {}}
    base = Path(args.dir) if args.dir else None
    for synchronous in args.synchronous:
        runs: dict[str, list[float]] = {
            "seq_per_s": [],
            "conc_per_s": [],
            "alone_p50_ms": [],
            "alone_p95_ms": [],
            "crowd_p50_ms": [],
            "crowd_p95_ms": [],
        }
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory(dir=base) as tmp:
                folder = Path(tmp)
                runs["seq_per_s"].append(
                    await sequential_rate(folder / "seq.sqlite3", args.generations, synchronous)
                )
                runs["conc_per_s"].append(
                    await concurrent_rate(
                        folder / "conc.sqlite3", args.generations, args.users, synchronous
                    )
                )
                alone, crowd = await reserve_latency(
                    folder / "lat.sqlite3", args.users, args.rounds, synchronous
                )
            runs["alone_p50_ms"].append(percentile(alone, 50) * 1000)
            runs["alone_p95_ms"].append(percentile(alone, 95) * 1000)
            runs["crowd_p50_ms"].append(percentile(crowd, 50) * 1000)
            runs["crowd_p95_ms"].append(percentile(crowd, 95) * 1000)
            print(f"  {synchronous} repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
        medians = {name: statistics.median(values) for name, values in runs.items()}
        medians["conc_over_seq"] = medians["conc_per_s"] / medians["seq_per_s"]
        results["modes"][synchronous] = {"median": medians, "runs": runs}
    return results


def print_table(results: dict) -> None:
    m = results["machine"]
    s = results["settings"]
    print(f"{m['nproc']} CPU(s), {m['cpu']}; Python {m['python']}, SQLite {m['sqlite']}")
    print(
        f"median of {s['repeats']} runs; {s['generations']} melodies per rate run; "
        f"{s['users']} users × {s['rounds']} rounds for latency"
    )
    header = (
        "synchronous | recorded/s, 1 task | recorded/s, "
        f"{s['users']} tasks | reserve p50/p95 alone (ms) | "
        f"reserve p50/p95, {s['users']} at once (ms)"
    )
    print(header)
    print("-" * len(header))
    for mode, data in results["modes"].items():
        d = data["median"]
        print(
            f"{mode:>11} | {d['seq_per_s']:18.0f} | {d['conc_per_s']:17.0f} | "
            f"{d['alone_p50_ms']:11.2f} / {d['alone_p95_ms']:<13.2f} | "
            f"{d['crowd_p50_ms']:13.1f} / {d['crowd_p95_ms']:.1f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=2000, help="melodies per rate run")
    parser.add_argument("--users", type=int, default=100, help="concurrent users")
    parser.add_argument("--rounds", type=int, default=20, help="requests per user, latency run")
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs; medians reported")
    parser.add_argument(
        "--synchronous",
        nargs="+",
        default=["FULL"],
        choices=["NORMAL", "FULL"],
        help="SQLite synchronous modes to measure (FULL is the repository's default)",
    )
    parser.add_argument("--dir", help="where the temporary database files go (default: tmp)")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    print_table(results)
    print(json.dumps({"bench": "storage", **results}, sort_keys=True))


if __name__ == "__main__":
    main()
