"""Scaling out, measured: the bot under load with its jobs on the PostgreSQL queue.

Everything is real: Debian's PostgreSQL (a cluster in a temp dir, fsync on), `melodybot worker`
processes, the Telegram front-end through python-telegram-bot and the loopback Telegram, the
shipped model and the renderers.

1. N users ask for one 8-bar melody each at once, with 1 and then 2 worker processes (one
   core each): complete melodies per second, and the ratio.
   Then the same melodies with the workers alone: put on the queue by the bench itself, with
   no front-end, loopback Telegram or repository sharing the cores, which shows what the
   workers themselves gain from a second one.
2. The same with 2 workers, one of them SIGKILLed once a quarter of the melodies are out:
   every user must get exactly one melody (one file, one picture, one voice note), and the
   quota ledger must count exactly the melodies delivered.
3. Two front-end processes on one database, one user asking 25 times in each with a quota of
   5: exactly 5 melodies, in the ledger and delivered.
4. What saturates first: PostgreSQL's write transactions per second (the repository's write
   lock) and the queue's jobs per second, against the platforms' own limits.

    python -m bench.bench_scale --help
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from bench.bench_bot import LAST_PARTS, _by_chat, _complete, _first_by_chat
from bench.common import report
from melodybot.environment import configure_process

PROJECT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    def __init__(self, url: str, data_dir: Path, audio: bool):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "worker.log"
        env = os.environ | {
            "MELODYBOT_DATABASE_URL": url,
            "MELODYBOT_AUDIO": "true" if audio else "false",
            "PYTHONPATH": str(PROJECT),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "melodybot", "worker", "--processes", "1",
             "--data-dir", str(data_dir)],
            cwd=PROJECT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while "worker ready" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _cpu(pid: int) -> float:
    """CPU seconds of a process and of the children it has waited for (MuseScore runs)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return found


def cpu_by_role(workers: list[WorkerProcess]) -> dict[str, float]:
    """CPU seconds so far of this process (the front-end and the loopback Telegram), of every
    worker's processes, and of PostgreSQL's."""
    worker_pids = {p for w in workers for p in _tree(w.process.pid)}
    forkservers = [  # the pools' forkservers are children of the workers; their children too
        int(d.name)
        for d in Path("/proc").iterdir()
        if d.name.isdigit() and int(d.name) not in worker_pids
        and b"forkserver" in _cmdline(int(d.name)) and _parent(int(d.name)) in worker_pids
    ]  # fmt: skip
    for pid in forkservers:
        worker_pids |= set(_tree(pid))
    postgres = [
        int(d.name)
        for d in Path("/proc").iterdir()
        if d.name.isdigit() and _cmdline(int(d.name)).startswith(b"postgres")
    ]
    own = os.times()
    return {
        "front_end": own.user + own.system,
        "workers": sum(_cpu(p) for p in worker_pids),
        "postgres": sum(_cpu(p) for p in postgres),
    }


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return 0


def _throughput(
    workers: int, users: int, bars: int, seconds: float, cpu_before: dict, cpu_after: dict
) -> dict:
    """What every run reports: melodies a second, and each role's CPU seconds a melody."""
    return {
        "workers": workers,
        "users": users,
        "bars": bars,
        "seconds": seconds,
        "melodies_per_s": users / seconds,
        "cpu_s_per_melody": {
            role: (cpu_after[role] - cpu_before[role]) / users for role in cpu_after
        },
    }


def _ask(fake, users: int, first_chat: int, text: str) -> set[str]:
    chats = set()
    for user in range(users):
        chat_id = first_chat + user
        chats.add(str(chat_id))
        fake.send_text(
            f"{text} seed={user}",
            chat_id=chat_id,
            user_id=chat_id,
            username=f"u{chat_id}",
            chat_type="private",
        )
    return chats


async def load_run(
    url: str,
    scratch: Path,
    workers: int,
    users: int,
    audio: bool,
    kill_after: int | None = None,
    bars: int = 8,
) -> dict[str, float]:
    """One front-end and ``workers`` worker processes; N users at once (see module)."""
    from bot.app import open_app
    from bot.config import Settings
    from bot.telegram_bot import TelegramFrontEnd
    from tests import raw_database
    from tests.fakes.telegram_api import FakeTelegram

    started_workers = [
        WorkerProcess(url, scratch / f"w{workers}-{n}-{kill_after}", audio) for n in range(workers)
    ]
    for worker in started_workers:
        worker.wait_ready()
    fake = FakeTelegram()
    await fake.start()
    settings = Settings(
        _env_file=None,
        data_dir=scratch / f"bot{workers}-{kill_after}",
        telegram_token="1:BENCH",
        telegram_base_url=fake.base_url,
        database_url=url,
        job_queue="postgresql",
        cooldown_s=0,
        daily_quota=10_000,
        queue_size=users + 10,
        audio=audio,
    )
    app = await open_app(settings)
    front_end = TelegramFrontEnd(app)
    await front_end.start()
    killed_at = None
    try:
        while app.pool.workers < workers:  # type: ignore[attr-defined]
            await asyncio.sleep(0.1)
        warm = _ask(fake, workers * 2, 7000 + 100 * workers, "/melody C4 E4 G4 bars=8")
        await _complete(fake, warm, audio)  # every worker has drawn and played once
        base = len(fake.calls)
        cpu_before = cpu_by_role(started_workers)
        began = time.perf_counter()
        chats = _ask(fake, users, 1000, f"/melody C4 D4 E4 G4 temp=0.9 bars={bars}")
        if kill_after is not None:
            while len({c.fields.get("chat_id") for c in fake.sent("sendDocument")} & chats) < (
                kill_after
            ):
                await asyncio.sleep(0.01)
            started_workers[0].kill()
            killed_at = time.perf_counter() - began
        await _complete(fake, chats, audio)
        elapsed = max(_by_chat(fake, LAST_PARTS)[c] for c in chats) - began
        measured = _throughput(
            workers, users, bars, elapsed, cpu_before, cpu_by_role(started_workers)
        )
        midi_at = _first_by_chat(fake, "sendDocument")
        await asyncio.sleep(3 if kill_after is None else 15)  # anything sent twice would be now
        sent = fake.calls[base:]
        per_chat: dict[str, dict[str, int]] = {}
        for call in sent:
            if (
                call.ok
                and call.fields.get("chat_id") in chats
                and call.method in (*LAST_PARTS, "sendDocument")
            ):
                counts = per_chat.setdefault(call.fields["chat_id"], {})
                counts[call.method] = counts.get(call.method, 0) + 1
        wanted = {"sendDocument": 1, "sendPhoto": 1} | ({"sendVoice": 1} if audio else {})
        exactly_once = sum(1 for c in chats if per_chat.get(c) == wanted)
        (ledger,) = raw_database.execute(
            url,
            "SELECT count(*) FROM usage u JOIN users s ON s.id = u.user_id "
            "WHERE u.counts = 1 AND u.kind = 'compose' AND s.platform_user_id::int >= 1000 "
            "AND s.platform_user_id::int < 7000",
        )
    finally:
        await front_end.stop()
        await app.close()
        await fake.stop()
        for worker in started_workers:
            worker.stop()
    return measured | {
        "midi_p50_s": sorted(midi_at[c] - began for c in chats)[len(chats) // 2],
        "answered_exactly_once": exactly_once,
        "ledger": ledger[0],
        "killed_at_s": killed_at or 0.0,
    }


async def workers_alone(
    url: str, scratch: Path, workers: int, users: int, audio: bool, bars: int = 8
) -> dict[str, float]:
    """The same melodies put on the queue by this process through :class:`QueuedJobs` alone,
    with no chat front-end, no loopback Telegram and no repository: how the workers scale when
    little else wants the machine's cores (each melody: compose, then draw and play at once)."""
    from bot.jobs import COMPOSE, DRAW, PLAY
    from bot.queue.client import QueuedJobs
    from generator.request import parse_request

    started_workers = [
        WorkerProcess(url, scratch / f"alone{workers}-{bars}-{n}", audio) for n in range(workers)
    ]
    for worker in started_workers:
        worker.wait_ready()
    jobs = QueuedJobs(url, owner=f"bench-alone-{workers}", queue_size=users + 10)
    await jobs.start()

    async def melody(seed: int, text: str) -> None:
        request = parse_request(f"{text} seed={seed}")
        composed = await jobs.run(COMPOSE, request)
        parts = [jobs.run(DRAW, (composed.melody, f"#{seed}"))]
        if audio:
            parts.append(jobs.run(PLAY, (composed.melody, "voice")))
        for made in await asyncio.gather(*parts):
            if not isinstance(made, bytes):
                raise RuntimeError(f"a part was not made: {made}")

    try:
        while jobs.workers < workers:
            await asyncio.sleep(0.1)
        await asyncio.gather(*(melody(s, "C4 E4 G4 bars=8") for s in range(workers * 2)))
        cpu_before = cpu_by_role(started_workers)
        began = time.perf_counter()
        text = f"C4 D4 E4 G4 temp=0.9 bars={bars}"
        await asyncio.gather(*(melody(seed, text) for seed in range(users)))
        elapsed = time.perf_counter() - began
        measured = _throughput(
            workers, users, bars, elapsed, cpu_before, cpu_by_role(started_workers)
        )
    finally:
        await jobs.close()
        for worker in started_workers:
            worker.stop()
    return measured


_FRONT_END = """
import asyncio, sys
from bot.app import open_app
from bot.config import Settings
from bot.incoming import Incoming
from tests.polling import whole

async def main(url, data_dir, name):
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=url,
                        job_queue="postgresql", audio=False, daily_quota=5, cooldown_s=0)
    app = await open_app(settings)
    while app.pool.workers < 1:
        await asyncio.sleep(0.1)
    print("ready", flush=True)
    sys.stdin.readline()
    async def one(n):
        reply = await app.core.handle(Incoming("test", "club", "shared", "Shared",
                                               f"!melody C4 D4 E4 bars=4 seed={n}"))
        if reply is None or reply.melody_id is None:  # refused (told a few times, then quietly)
            return 0
        await whole(reply)
        return 1
    delivered = sum(await asyncio.gather(*(one(n) for n in range(25))))
    await app.close()
    print(delivered, flush=True)

asyncio.run(main(*sys.argv[1:4]))
"""


def two_front_ends(url: str, scratch: Path) -> dict[str, int]:
    from tests import raw_database

    worker = WorkerProcess(url, scratch / "quota-worker", audio=False)
    worker.wait_ready()
    env = os.environ | {"PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-c", _FRONT_END, url]
    processes = [
        subprocess.Popen(
            [*command, str(scratch / f"front{n}"), f"front{n}"],
            cwd=PROJECT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        for process in processes:
            process.stdin.write("go\n")  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
        delivered = [int(p.communicate(timeout=600)[0].split()[-1]) for p in processes]
    finally:
        worker.stop()
    (ledger,) = raw_database.execute(
        url,
        "SELECT count(*) FROM usage u JOIN users s ON s.id = u.user_id "
        "WHERE s.platform_user_id = 'shared' AND u.counts = 1",
    )
    (done,) = raw_database.execute(
        url,
        "SELECT count(*) FROM generations g JOIN users s ON s.id = g.user_id "
        "WHERE s.platform_user_id = 'shared' AND g.status = 'done'",
    )
    return {"asked": 50, "delivered": sum(delivered), "ledger": ledger[0], "done": done[0]}


async def write_capacity(url: str, seconds: float = 5.0, clients: int = 8) -> float:
    """A melody's database work (reserve, complete, delivered) per second, flat out, from
    ``clients`` connections: the repository's write-lock ceiling on this machine."""
    from storage import Limits, Repository

    repos = [
        await Repository.open(url, defaults=Limits(daily_quota=10**9, cooldown_s=0))
        for _ in range(clients)
    ]
    done = 0
    stop = time.perf_counter() + seconds

    async def loop(repo, n: int) -> None:
        nonlocal done
        user = await repo.upsert_user("bench", f"w{n}", f"w{n}")
        while time.perf_counter() < stop:
            melody = await repo.reserve_melody(user, "bench", "c", "x", {}, "m", "v", 1)
            await repo.complete_melody(melody, b"MThd" + bytes(400), "C", 64, tokens="60")
            await repo.mark_delivered(melody)
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(loop(repo, n) for n, repo in enumerate(repos)))
    rate = done / (time.perf_counter() - began)
    for repo in repos:
        await repo.close()
    return rate


async def queue_capacity(url: str, jobs: int = 2000) -> float:
    """Jobs put on the queue per second (procrastinate's insert, from one front-end)."""
    from bot.queue.shared import QUEUE, TASK, encode, ensure_schema, queue_app

    await ensure_schema(url)
    app = queue_app(url)
    async with app.open_async():
        began = time.perf_counter()
        deferrer = app.configure_task(TASK, queue="bench-" + QUEUE)
        await asyncio.gather(
            *(deferrer.defer_async(kind="x", key=f"b{n}", payload=encode(n)) for n in range(jobs))
        )
        return jobs / (time.perf_counter() - began)


def _shown(result):
    """Each figure as soon as it is measured, so a long run that fails later loses nothing."""
    print(json.dumps({"measured": result}), flush=True)
    return result


def main() -> None:
    configure_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40, help="melodies asked at once")
    parser.add_argument("--no-audio", action="store_true", help="skip the audio previews")
    parser.add_argument(
        "--bars", type=int, nargs="+", default=[8, 32], help="melody lengths to run 1 vs 2 at"
    )
    parser.add_argument(
        "--alone-users",
        type=int,
        default=120,
        help="melodies put on the queue at once for the workers alone (more than --users: "
        "their runs are short, and the last melody's compose, draw and play cannot be shared)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="times to run 1 and 2 workers side by side"
    )
    args = parser.parse_args()
    audio = not args.no_audio
    from tests.postgres_server import running_postgres

    with running_postgres(fsync=True) as server, tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        runs: dict[tuple[str, int, int], list[dict]] = {}
        for repeat in range(args.repeats):  # 1 and 2 workers side by side, again and again
            for bars in args.bars:
                for how, run in (("chat", load_run), ("alone", workers_alone)):
                    for workers in (1, 2):
                        url = server.database(f"{how}{workers}b{bars}r{repeat}")
                        users = args.users if how == "chat" else args.alone_users
                        measured = asyncio.run(
                            run(url, scratch / f"r{repeat}", workers, users, audio, bars=bars)
                        )
                        runs.setdefault((how, workers, bars), []).append(_shown(measured))
        killed = _shown(
            asyncio.run(
                load_run(server.database("kill"), scratch, 2, args.users, audio, args.users // 4)
            )
        )
        quotas = _shown(two_front_ends(server.database("quota"), scratch))
        writes = _shown(asyncio.run(write_capacity(server.database("writes"))))
        enqueued = _shown(asyncio.run(queue_capacity(server.database("queue"))))
    jobs_per_melody = 3 if audio else 2
    rows = [("measure", "value")]
    ratios = {}
    for how, label, client in (
        ("chat", "the bot (Telegram front-end)", "front-end"),
        ("alone", "workers alone (the bench's queue client)", "queue client"),
    ):
        for bars in args.bars:
            for workers in (1, 2):
                done = runs[how, workers, bars]
                cpu = {
                    role: median(r["cpu_s_per_melody"][role] for r in done) * 1000
                    for role in done[0]["cpu_s_per_melody"]
                }
                rows.append(
                    (
                        f"{label}: {done[0]['users']} × {bars} bars at once, {workers} worker(s): "
                        f"melodies/s; CPU ms a melody: workers / {client} / PostgreSQL",
                        f"{median(r['melodies_per_s'] for r in done):.2f}; "
                        f"{cpu['workers']:.0f} / {cpu['front_end']:.0f} / {cpu['postgres']:.0f}",
                    )
                )
            pairs = zip(runs[how, 1, bars], runs[how, 2, bars], strict=True)
            each = [two["melodies_per_s"] / one["melodies_per_s"] for one, two in pairs]
            ratios[how, bars] = each
            rows.append(
                (
                    f"{label}, {bars} bars: 2 workers / 1 worker (median of {len(each)}; each)",
                    f"**{median(each):.2f}×** ({', '.join(f'{r:.2f}' for r in each)})",
                )
            )
    per_core = median(r["melodies_per_s"] for r in runs["chat", 2, args.bars[0]]) / 2
    rows += [
        (
            f"2 workers, one SIGKILLed after {args.users // 4} melodies: answered exactly once",
            f"{killed['answered_exactly_once']} of {args.users}",
        ),
        (
            "  … quota ledger / complete melodies / seconds",
            f"{killed['ledger']} / {args.users} / {killed['seconds']:.1f} s",
        ),
        (
            "2 front-end processes, 2 × 25 asks, quota 5: delivered / ledger / stored",
            f"{quotas['delivered']} / {quotas['ledger']} / {quotas['done']}",
        ),
    ]
    projection = [
        ("what", "capacity", "melodies/s it allows"),
        (
            f"one worker core ({args.bars[0]} bars: composing, drawing, playing)",
            f"{per_core:.2f} melodies/s",
            "× cores",
        ),
        (
            "PostgreSQL: a melody's writes (reserve, complete, delivered)",
            f"{writes:.0f} melodies/s",
            f"{writes:.0f}",
        ),
        (
            f"the queue: jobs put on it ({jobs_per_melody} per melody)",
            f"{enqueued:.0f} jobs/s",
            f"{enqueued / jobs_per_melody:.0f}",
        ),
        ("Telegram: 30 messages/s per bot, 3 per melody", "30 messages/s", "10 per bot token"),
        ("Discord: 50 requests/s per bot, 2 per melody", "50 requests/s", "25 per bot token"),
    ]
    report(
        "Scaling out: the PostgreSQL job queue with 1 and 2 worker processes",
        rows,
        {
            "bench": "scale",
            "runs": [r for done in runs.values() for r in done],
            "ratios": {f"{how} {bars} bars": each for (how, bars), each in ratios.items()},
            "killed": killed,
            "quotas": quotas,
        },
    )
    report(
        "What saturates first (projection from the figures above)",
        projection,
        {"bench": "scale-projection", "per_core": per_core, "writes": writes, "jobs": enqueued},
    )


if __name__ == "__main__":
    main()
