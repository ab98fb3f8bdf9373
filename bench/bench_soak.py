"""Soak under faults: mixed traffic from many users against real `melodybot telegram` processes,
with the renderers crashing and hanging, Telegram failing, and the bot killed and restarted.

Faults injected:
- the renderer: a MuseScore first on PATH that crashes or hangs now and then (the real one
  otherwise); the bot's render timeout is short, so a hang costs seconds (the audio is made in
  the bot's own process and has no program to fail);
- Telegram (the loopback fake): 5xx and 429 answers at random, a 404 on some chat actions, and
  users who block the bot right after asking (403 on everything sent to them, for a while);
- the process: every few minutes the bot is killed with SIGKILL or stopped with SIGTERM, and
  started again at once, as a supervisor would.

Every melody asked for ends in exactly one of: delivered (the MIDI reached the chat), refused with
a reason the user reads (quota, cooldown, busy, restarting), unreachable (the user had blocked the
bot: nothing can reach them) or lost (none of these within the patience of a user). Lost must be
0. At the end the quota counts in the database must equal the melodies delivered, user by user,
no melody may arrive twice, every delivered melody's web page must answer, and no child process
or temporary file may be left.

    python -m bench.bench_soak --minutes 10 --users 50
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import report

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# `python -m melodybot` with PYTHONPATH at this checkout runs its code, whichever checkout the
# installed `melodybot` script was made from.
MELODYBOT = (sys.executable, "-m", "melodybot")
PATIENCE_S = 300.0  # a user gives up on an answer after this long
PR_SET_CHILD_SUBREAPER = 36

REFUSALS = {
    "quota": re.compile(r"You've had your \d+ melod(y|ies) for today"),
    "cooldown": re.compile(r"^Slow down"),
    "busy": re.compile(r"^I'm busy|too busy to finish"),
    "restarting": re.compile(r"^I'm restarting"),
    "not finished after a restart": re.compile(r"could not finish it"),
    "incident": re.compile(r"something went wrong on my side"),
    "disk full": re.compile(r"run out of disk space"),
}
MELODY_HEAD = re.compile(
    r"^(?:.*: I was restarted while composing this one for you; here it is\.\n)?#(\d+) · key"
)
SEEDS = ["C4 D4 E4", "G4 A4 B4 C5", "A4 C5 E5", "D4 F#4 A4", "E4 G4 B4 A4", "F4 A4 C5 Bb4"]
METERS = ["2/4", "3/4", "4/4", "6/8"]
OTHER_COMMANDS = [
    "!history",
    "!limits",
    "!help",
    "!melody X9 Q2",
    "!show 99999999999999999999",
    "hello there",
    "!melody C4 temp=9",
]
BLOCK_CHANCE = 0.03  # a user blocks the bot right after asking, and unblocks later

RENDERER = """#!/bin/bash
# {tool}, with faults: crashes {crash}% and hangs {hang}% of the times it is started.
roll=$((RANDOM % 100))
if [ $roll -lt {crash} ]; then echo crash >> {log}; echo "injected crash" >&2; exit 134; fi
if [ $roll -lt {crash_or_hang} ]; then echo hang >> {log}; exec sleep 600; fi
exec {real} "$@"
"""


@dataclass
class Tally:
    requested: int = 0
    delivered: int = 0
    delivered_after_restart: int = 0
    refused: collections.Counter = field(default_factory=collections.Counter)
    unreachable: int = 0
    lost: int = 0
    lost_cases: list = field(default_factory=list)  # what each lost request's chat received
    journal: dict = field(default_factory=lambda: collections.defaultdict(list))  # per chat
    resent: int = 0
    resend_refused: int = 0
    other_commands: int = 0
    platform_faults: collections.Counter = field(default_factory=collections.Counter)
    restarts: collections.Counter = field(default_factory=collections.Counter)
    delivered_per_user: collections.Counter = field(default_factory=collections.Counter)
    delivered_ids: collections.Counter = field(default_factory=collections.Counter)


class Chats:
    """What reached each chat, in order, read from the fake's call log as it grows."""

    def __init__(self, fake) -> None:
        self.fake = fake
        self.by_chat: dict[str, list] = collections.defaultdict(list)
        self._read = 0

    def _catch_up(self) -> None:
        calls = self.fake.calls
        while self._read < len(calls):
            call = calls[self._read]
            self._read += 1
            chat = call.fields.get("chat_id")
            if (
                chat is not None
                and call.method.startswith("send")
                and call.method != "sendChatAction"
            ):
                self.by_chat[chat].append(call)

    def cursor(self, chat: str) -> int:
        self._catch_up()
        return len(self.by_chat[chat])

    async def outcome(self, chat: str, since: int) -> tuple[str, str | None]:
        """('delivered', melody id), ('refused', reason), ('unreachable', None) or ('lost',
        None): the first thing sent to the chat after ``since`` that ends a request. What ends
        nothing (a melody's own text, a note, a failed try the bot repeats) is passed over."""
        deadline = time.monotonic() + PATIENCE_S
        head: str | None = None
        while time.monotonic() < deadline:
            self._catch_up()
            calls = self.by_chat[chat]
            while since < len(calls):
                call = calls[since]
                since += 1
                if call.status == 403:
                    return "unreachable", None
                if not call.ok:
                    continue
                if call.method == "sendMessage":
                    text = call.fields.get("text", "")
                    if match := MELODY_HEAD.match(text):
                        head = match[1]
                        continue
                    for reason, pattern in REFUSALS.items():
                        if pattern.search(text):
                            return "refused", reason
                is_midi = call.files.get("document", b"")[:4] == b"MThd"
                if call.method == "sendDocument" and is_midi:
                    if match := MELODY_HEAD.match(call.fields.get("caption", "")):
                        head = match[1]  # the melody's text rides on its file
                    if head is not None:
                        return "delivered", head
            await asyncio.sleep(0.05)
        return "lost", None


class Bot:
    """The bot process, started again whenever it stops, as Docker's restart policy would."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        log_path = self.logs / f"bot-{self.starts}.log"
        with log_path.open("wb") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                *MELODYBOT, "telegram", env=self.env, stdout=log_file, stderr=log_file
            )
        for _ in range(1200):  # until it polls
            if "polling as" in log_path.read_text(errors="replace"):
                return
            if self.process.returncode is not None:
                raise RuntimeError(f"the bot did not start: see {log_path}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the bot did not start in time: see {log_path}")

    async def restart(self, how: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(how)
        code = await asyncio.wait_for(self.process.wait(), 60)
        await self.start()
        return code

    async def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 60)


def _fault_tools(bin_dir: Path, fault_log: Path) -> list[str]:
    """A MuseScore that crashes and hangs at times, first on PATH; returns which names."""
    from generator.render.score import MUSESCORE_NAMES

    wrapped = []
    for names, crash, hang in ((MUSESCORE_NAMES, 8, 4),):
        for name in names:
            real = shutil.which(name)
            if real is None:
                continue
            script = RENDERER.format(
                tool=name,
                crash=crash,
                hang=hang,
                crash_or_hang=crash + hang,
                log=f"{fault_log}.{name}",
                real=real,
            )
            (bin_dir / name).write_text(script)
            (bin_dir / name).chmod(0o755)
            wrapped.append(name)
    return wrapped


def _platform_faults(rng: random.Random, blocked: set[str], tally: Tally):
    """The fake's per-call fault: 403 for users who have blocked the bot, else now and then a
    5xx, a 429 or (on chat actions) a 404."""

    def fault(call) -> tuple[int, str] | None:
        chat = call.fields.get("chat_id")
        if chat in blocked and call.method.startswith("send"):
            tally.platform_faults["403 blocked"] += 1
            return 403, "Forbidden: bot was blocked by the user"
        if not call.method.startswith("send"):
            return None
        roll = rng.random()
        if call.method == "sendChatAction":
            if roll < 0.10:
                tally.platform_faults["404"] += 1
                return 404, "Not Found"
            return None
        if roll < 0.02:
            tally.platform_faults["502"] += 1
            return 502, "Bad Gateway"
        if roll < 0.03:
            tally.platform_faults["500"] += 1
            return 500, "Internal Server Error"
        if roll < 0.05:
            tally.platform_faults["429"] += 1
            return 429, "Too Many Requests: retry after 1"
        return None

    return fault


async def _user(
    number: int,
    fake,
    chats: Chats,
    tally: Tally,
    blocked: set[str],
    until: float,
    rng: random.Random,
) -> None:
    """One user: mostly melodies, some re-sends and variations, a few other commands and
    mistakes, with a pause after each answer (longer than the cooldown). A user told the quota
    is spent asks for no more melodies; now and then one blocks the bot right after asking."""
    user_id = 10_000 + number
    chat = str(user_id)
    mine: list[str] = []
    quota_spent = False
    while time.monotonic() < until:
        roll = rng.random()
        if quota_spent or roll >= 0.92:
            text = rng.choice(OTHER_COMMANDS)
            kind = "other"
        elif roll < 0.70 or not mine:
            notes = rng.choice(SEEDS)
            text = (
                f"/melody {notes} bars={rng.randint(4, 16)} meter={rng.choice(METERS)} "
                f"temp={rng.choice([0.7, 0.85, 1.0, 1.2])}"
            )
            kind = "compose"
        elif roll < 0.82:
            text, kind = f"!again {rng.choice(mine)} temp=0.9", "compose"
        else:
            text, kind = f"!show {rng.choice(mine)}", "show"
        since = chats.cursor(chat)
        fake.send_text(
            text, chat_id=user_id, user_id=user_id, username=f"u{number}", chat_type="private"
        )
        if kind == "other":
            tally.other_commands += 1
            await asyncio.sleep(rng.uniform(3.5, 8))
            continue
        blocks = kind == "compose" and rng.random() < BLOCK_CHANCE
        if blocks:
            blocked.add(chat)
        outcome, detail = await chats.outcome(chat, since)
        tally.journal[chat].append((round(time.monotonic(), 1), text, outcome, detail))
        if blocks:
            await asyncio.sleep(rng.uniform(5, 30))  # before unblocking and coming back
            blocked.discard(chat)
        if kind == "show":
            tally.resent += outcome == "delivered"
            tally.resend_refused += outcome != "delivered"
        else:
            tally.requested += 1
            if outcome == "delivered":
                tally.delivered += 1
                tally.delivered_per_user[chat] += 1
                tally.delivered_ids[detail] += 1
                mine.append(detail)
            elif outcome == "refused":
                tally.refused[detail] += 1
                quota_spent = quota_spent or detail == "quota"
            elif outcome == "unreachable":
                tally.unreachable += 1
            else:
                tally.lost += 1
                tally.lost_cases.append(
                    [text]
                    + [
                        f"{c.method} {c.status} {c.fields.get('text', '')[:60]!r}"
                        for c in chats.by_chat[chat][since:]
                    ]
                )
        await asyncio.sleep(rng.uniform(3.5, 8))


async def _restarter(bot: Bot, tally: Tally, until: float, every_s: float) -> None:
    """Kill -9 and SIGTERM in turn, every ``every_s``, each followed by an immediate start."""
    signals = [signal.SIGKILL, signal.SIGTERM]
    turn = 0
    while time.monotonic() + every_s < until:
        await asyncio.sleep(every_s)
        how = signals[turn % 2]
        turn += 1
        code = await bot.restart(how)
        tally.restarts[f"{how.name} (exit {code})"] += 1


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _check_pages(data: Path, port: int, delivered: set[str]) -> dict[str, object]:
    """Every delivered melody's page answers 200 from the bot that runs now (after the kills
    and restarts), with the melody's first line on it; returns what did not."""
    import aiohttp

    with sqlite3.connect(data / "melodybot.sqlite3") as db:
        pages = dict(db.execute("SELECT id, page_id FROM generations").fetchall())
    missing = []
    async with aiohttp.ClientSession() as session:
        for melody in sorted(delivered, key=int):
            page_id = pages.get(int(melody))
            url = f"http://127.0.0.1:{port}/m/{page_id}"
            for _ in range(30):  # the bot may still be starting after its last restart
                try:
                    async with session.get(url) as response:
                        body = await response.text()
                        status = response.status
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(1)
            else:
                status, body = 0, ""
            if page_id is None or status != 200 or f"#{melody} · key" not in body:
                missing.append(f"#{melody}: {status}")
    return {"checked": len(delivered), "missing": missing}


def _children() -> list[str]:
    """Processes whose parent is this one: with this process the subreaper, every orphan the
    bot left behind ends up here."""
    found = []
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.append(stat.parent.name + " " + (stat.parent / "comm").read_text().strip())
    return found


async def soak(minutes: float, users: int, seed: int, restart_every_s: float) -> dict:
    from tests.fakes.telegram_api import FakeTelegram

    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    rng = random.Random(seed)
    tally = Tally()
    blocked: set[str] = set()
    work = Path(tempfile.mkdtemp(prefix="melodybot-soak-"))
    temp_before = {p.name for p in Path(tempfile.gettempdir()).glob("melodybot-*")}
    fake = FakeTelegram()
    await fake.start()
    fake.fault = _platform_faults(rng, blocked, tally)
    bin_dir = work / "bin"
    bin_dir.mkdir()
    wrapped = _fault_tools(bin_dir, work / "faults")
    data = work / "data"
    pages_port = _free_port()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(work),
        "TELEGRAM_TOKEN": "123456:SOAK",
        "TELEGRAM_BASE_URL": fake.base_url,
        "MELODYBOT_DATA_DIR": str(data),
        "MELODYBOT_HEARTBEAT_FILE": str(work / "heartbeat.json"),
        "MELODYBOT_RENDER_TIMEOUT_S": "6",
        "MELODYBOT_DAILY_QUOTA": "12",
        "MELODYBOT_COOLDOWN_S": "3",
        "MELODYBOT_HOUSEKEEPING_EVERY_S": "60",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(PROJECT_ROOT),  # the bot runs this checkout's code, as the bench does
        # the melody pages, checked for every delivered melody at the end
        "MELODYBOT_HEALTH_PORT": str(pages_port),
        "MELODYBOT_PUBLIC_URL": f"http://127.0.0.1:{pages_port}",
    }
    bot = Bot(env, work)
    chats = Chats(fake)
    await bot.start()
    started = time.monotonic()
    until = started + minutes * 60
    try:
        traffic = [
            _user(n, fake, chats, tally, blocked, until, random.Random(seed * 1000 + n))
            for n in range(users)
        ]
        await asyncio.gather(
            *traffic,
            _restarter(bot, tally, until, restart_every_s),
        )
        pages = await _check_pages(data, pages_port, set(tally.delivered_ids))
        final_code = await bot.stop()
    finally:
        if bot.process is not None and bot.process.returncode is None:
            bot.process.kill()
        await fake.stop()
    await asyncio.sleep(2)  # let the kernel deliver any death signal
    leftover_children = _children()
    leftover_scratch = (
        sorted(p.name for p in (data / "tmp").iterdir()) if (data / "tmp").exists() else []
    )
    temp_after = {p.name for p in Path(tempfile.gettempdir()).glob("melodybot-*")}
    leftover_temp = sorted(temp_after - temp_before - {work.name})
    with sqlite3.connect(data / "melodybot.sqlite3") as db:
        counted = dict(
            db.execute(
                """SELECT u.platform_user_id, count(*) FROM usage g JOIN users u ON u.id = g.user_id
                   WHERE g.counts = 1 AND g.kind = 'compose' GROUP BY u.platform_user_id"""
            ).fetchall()
        )
        pending = db.execute(
            "SELECT count(*) FROM generations WHERE status = 'pending'"
        ).fetchone()[0]
    mismatched = {
        chat: (counted.get(chat, 0), tally.delivered_per_user[chat])
        for chat in set(counted) | set(tally.delivered_per_user)
        if counted.get(chat, 0) != tally.delivered_per_user[chat]
    }
    renderer_faults = collections.Counter()
    for name in wrapped:
        log = work / f"faults.{name}"
        if log.exists():
            renderer_faults.update(f"{name} {line}" for line in log.read_text().split())
    after_restart = sum(
        1
        for calls in chats.by_chat.values()
        for call in calls
        if call.ok and "I was restarted while composing this one" in call.fields.get("text", "")
    )
    mismatch_details = {}
    with sqlite3.connect(data / "melodybot.sqlite3") as db:
        for chat in mismatched:
            rows = db.execute(
                """SELECT g.id, g.status, g.delivered_at IS NOT NULL, g.error, s.counts, g.owner
                   FROM generations g JOIN users u ON u.id = g.user_id
                   LEFT JOIN usage s ON s.generation_id = g.id
                   WHERE u.platform_user_id = ? ORDER BY g.id""",
                (chat,),
            ).fetchall()
            mismatch_details[chat] = {"rows": rows, "journal": tally.journal[chat]}
    if tally.lost or mismatched:
        print(f"kept {work} for a look", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "minutes": minutes,
        "users": users,
        "requested": tally.requested,
        "delivered": tally.delivered,
        "delivered_after_restart": after_restart,
        "refused": dict(tally.refused),
        "unreachable": tally.unreachable,
        "lost": tally.lost,
        "lost_cases": tally.lost_cases,
        "resent": tally.resent,
        "resend_refused": tally.resend_refused,
        "other_commands": tally.other_commands,
        "delivered_twice": sum(1 for n in tally.delivered_ids.values() if n > 1),
        "quota_mismatches": len(mismatched),
        "mismatch_details": mismatch_details,
        "quota_counted": sum(counted.values()),
        "pending_after_stop": pending,
        "final_exit_code": final_code,
        "pages_checked": pages["checked"],
        "pages_missing": pages["missing"],
        "restarts": dict(tally.restarts),
        "bot_starts": bot.starts,
        "renderer_faults": dict(renderer_faults),
        "platform_faults": dict(tally.platform_faults),
        "leftover_children": leftover_children,
        "leftover_scratch": leftover_scratch,
        "leftover_temp": leftover_temp,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the traffic runs")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="the faults' and users' random seed")
    parser.add_argument(
        "--restart-every", type=float, default=150.0, help="seconds between kill -9 / SIGTERM"
    )
    args = parser.parse_args()
    r = asyncio.run(soak(args.minutes, args.users, args.seed, args.restart_every))
    refused = ", ".join(f"{reason} {n}" for reason, n in sorted(r["refused"].items())) or "none"
    rows = [
        ("measure", "value"),
        ("melodies asked for", r["requested"]),
        ("delivered (the MIDI reached the chat)", r["delivered"]),
        ("… of them finished by the next process after a restart", r["delivered_after_restart"]),
        ("refused, with the reason said", f"{sum(r['refused'].values())} ({refused})"),
        ("unreachable (the user had blocked the bot)", r["unreachable"]),
        ("**lost**", f"**{r['lost']}**"),
        ("melodies delivered twice", r["delivered_twice"]),
        ("users whose quota count ≠ their deliveries", r["quota_mismatches"]),
        ("re-sends (`!show`) delivered / refused", f"{r['resent']} / {r['resend_refused']}"),
        ("other commands (history, help, mistakes)", r["other_commands"]),
        ("restarts", ", ".join(f"{k} ×{v}" for k, v in r["restarts"].items()) or "none"),
        (
            "renderer faults",
            ", ".join(f"{k} ×{v}" for k, v in sorted(r["renderer_faults"].items())),
        ),
        (
            "platform faults",
            ", ".join(f"{k} ×{v}" for k, v in sorted(r["platform_faults"].items())),
        ),
        ("pending melodies after the last stop", r["pending_after_stop"]),
        (
            "delivered melodies whose page did not answer",
            f"{len(r['pages_missing'])} of {r['pages_checked']}",
        ),
        ("child processes left", len(r["leftover_children"])),
        ("scratch / temp entries left", len(r["leftover_scratch"]) + len(r["leftover_temp"])),
    ]
    report(
        f"Soak: {r['minutes']:g} min, {r['users']} users, faults injected",
        rows,
        {"bench": "soak"} | r,
    )
    if (
        r["lost"]
        or r["quota_mismatches"]
        or r["delivered_twice"]
        or r["leftover_children"]
        or r["pages_missing"]
    ):
        sys.exit(1)


if __name__ == "__main__":
    main()
