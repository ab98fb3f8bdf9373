"""The bot under load, end to end: simulated users through python-telegram-bot and a loopback
Telegram, with the shipped model, the real renderers and a real database.

1. One user on an idle bot, ten melodies one after another: time to the MIDI reply (the text
   rides on it as its caption) and to the last attachment (the score picture and the voice note).
2. N users each ask for one 8-bar melody at once: time to the MIDI reply and to the last
   attachment, p50/p95, and complete melodies per second.
3. While 20 melodies are in hand, how long `!help` takes to be answered.

Telegram allows a bot about 30 requests a second in all (python-telegram-bot's rate limiter
keeps to it), and a melody takes three (file, photo, voice note), so the platform, not the bot,
caps a Telegram bot at about 10 complete melodies a second.

    python -m bench.bench_bot --help
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import report
from melodybot.environment import configure_process

LAST_PARTS = ("sendPhoto", "sendVoice", "sendAudio")


def _by_chat(fake, methods: tuple[str, ...]) -> dict[str, float]:
    """The time each chat last received one of ``methods``."""
    times: dict[str, float] = {}
    for call in fake.calls:
        if call.method in methods and call.ok:
            chat = call.fields.get("chat_id", "")
            times[chat] = max(times.get(chat, 0.0), call.at)
    return times


def _first_by_chat(fake, method: str) -> dict[str, float]:
    times: dict[str, float] = {}
    for call in fake.calls:
        if call.method == method and call.ok:
            times.setdefault(call.fields.get("chat_id", ""), call.at)
    return times


async def _complete(fake, chats: set[str], audio: bool, timeout: float = 1200) -> None:
    """Until every chat has its MIDI, its picture and (with audio) its voice note."""
    wanted = {"sendDocument", "sendPhoto"} | ({"sendVoice"} if audio else set())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have: dict[str, set[str]] = {}
        for call in fake.calls:
            if call.ok:
                have.setdefault(call.fields.get("chat_id", ""), set()).add(call.method)
        if all(wanted <= have.get(chat, set()) for chat in chats):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("melodies still incomplete")


async def run(users: int, queued: int, audio: bool, idle_melodies: int) -> dict[str, float]:
    from bot.app import open_app
    from bot.config import Settings
    from bot.telegram_bot import TelegramFrontEnd
    from tests.fakes.telegram_api import FakeTelegram

    fake = FakeTelegram()
    await fake.start()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            _env_file=None,
            data_dir=Path(scratch),
            telegram_token="1:BENCH",
            telegram_base_url=fake.base_url,
            cooldown_s=0,
            daily_quota=10_000,
            queue_size=max(users, queued) + 5,
            audio=audio,
        )
        app = await open_app(settings)
        front_end = TelegramFrontEnd(app)
        await front_end.start()
        try:
            idle_midi, idle_all = [], []
            for n in range(idle_melodies):
                chat = str(2000 + n)
                asked = time.perf_counter()
                fake.send_text(
                    f"/melody C4 D4 E4 G4 temp=0.9 bars=8 seed={n}",
                    chat_id=int(chat),
                    user_id=2000 + n,
                    username=f"idle{n}",
                    chat_type="private",
                )
                await _complete(fake, {chat}, audio)
                idle_midi.append(_first_by_chat(fake, "sendDocument")[chat] - asked)
                idle_all.append(_by_chat(fake, LAST_PARTS)[chat] - asked)

            started = time.perf_counter()
            chats = set()
            for user in range(users):
                chat_id = 1000 + user
                chats.add(str(chat_id))
                fake.send_text(
                    f"/melody C4 D4 E4 G4 temp=0.9 bars=8 seed={user}",
                    chat_id=chat_id,
                    user_id=chat_id,
                    username=f"u{user}",
                    chat_type="private",
                )
            await _complete(fake, chats, audio)
            midi_at = _first_by_chat(fake, "sendDocument")
            last_at = _by_chat(fake, LAST_PARTS)
            to_midi = [midi_at[c] - started for c in chats]
            to_last = [last_at[c] - started for c in chats]

            for user in range(queued):
                fake.send_text(
                    f"/melody D4 E4 F#4 bars=8 seed={user}",
                    chat_id=5000 + user,
                    user_id=5000 + user,
                    username=f"q{user}",
                    chat_type="private",
                )
            for _ in range(2000):  # until they are all in hand
                if app.pool.pending >= queued:
                    break
                await asyncio.sleep(0.002)
            waiting = app.pool.pending
            asked = time.perf_counter()
            messages_before = len(fake.sent("sendMessage"))
            fake.send_text("!help", chat_id=9999, user_id=9999, username="helpme")
            while not any(
                c.fields.get("chat_id") == "9999"
                for c in fake.sent("sendMessage")[messages_before:]
            ):
                await asyncio.sleep(0.002)
            help_ms = (time.perf_counter() - asked) * 1000
            await _complete(fake, {str(5000 + u) for u in range(queued)}, audio)
        finally:
            await front_end.stop()
            await app.close()
            await fake.stop()
    return {
        "users": users,
        "workers": settings.workers,
        "idle_midi_ms": statistics.median(idle_midi) * 1000,
        "idle_all_ms": statistics.median(idle_all) * 1000,
        "melodies_per_s": users / max(to_last),
        "midi_p50_s": statistics.median(to_midi),
        "midi_p95_s": statistics.quantiles(to_midi, n=20)[-1],
        "last_p50_s": statistics.median(to_last),
        "last_p95_s": statistics.quantiles(to_last, n=20)[-1],
        "help_ms": help_ms,
        "queued_while_help": waiting,
    }


def main() -> None:
    configure_process()  # the bot's own process settings (one BLAS thread), before NumPy loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--queued", type=int, default=20)
    parser.add_argument("--idle", type=int, default=10, help="melodies asked one by one first")
    parser.add_argument("--no-audio", action="store_true", help="skip the audio previews")
    args = parser.parse_args()
    r = asyncio.run(run(args.users, args.queued, not args.no_audio, args.idle))
    rows = [
        ("measure", "value"),
        ("one user, idle bot: MIDI reply (median)", f"{r['idle_midi_ms']:.0f} ms"),
        ("one user, idle bot: last attachment (median)", f"{r['idle_all_ms']:.0f} ms"),
        (
            f"{r['users']} users at once: MIDI reply p50 / p95",
            f"{r['midi_p50_s']:.2f} s / {r['midi_p95_s']:.2f} s",
        ),
        (
            f"{r['users']} users at once: last attachment p50 / p95",
            f"{r['last_p50_s']:.2f} s / {r['last_p95_s']:.2f} s",
        ),
        (f"{r['users']} users at once: complete melodies per second", f"{r['melodies_per_s']:.2f}"),
        (f"!help with {r['queued_while_help']} melodies in hand", f"{r['help_ms']:.0f} ms"),
    ]
    report(
        f"The bot under load (Telegram, loopback API, {r['workers']} worker processes)",
        rows,
        {"bench": "bot"} | r,
    )


if __name__ == "__main__":
    main()
