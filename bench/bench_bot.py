"""The bot under load, end to end: simulated users through python-telegram-bot and a loopback
Telegram, with the shipped model, the real renderers and a real database.

1. N users each ask for one 8-bar melody at once: melodies per second, p50/p95 time to the reply
   (until the MIDI file is uploaded, after the text and the score picture).
2. While 20 melodies wait in the queue, how long `!help` takes to be answered.

    python -m bench.bench_bot --help
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import bot.cli  # noqa: F401  (the bot's own process settings: one BLAS thread)
from bench.common import report


async def run(users: int, queued: int, audio: bool) -> dict[str, float]:
    from bot.app import open_app
    from bot.config import Settings
    from bot.runner import TelegramFrontEnd
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
            daily_quota=10**6,
            queue_size=max(users, queued) + 5,
            audio=audio,
        )
        app = await open_app(settings)
        front_end = TelegramFrontEnd(app)
        await front_end.start()
        try:
            started = time.perf_counter()
            for user in range(users):
                fake.send_text(
                    f"/melody C4 D4 E4 G4 temp=0.9 bars=8 seed={user}",
                    chat_id=-(1000 + user),
                    user_id=1000 + user,
                    username=f"u{user}",
                )
            done = await fake.wait_for("sendDocument", users, timeout=1200)
            elapsed = max(call.at for call in done) - started
            latencies = [call.at - started for call in done[:users]]

            for user in range(queued):
                fake.send_text(
                    f"/melody D4 E4 F#4 bars=8 seed={user}",
                    chat_id=-5000 - user,
                    user_id=5000 + user,
                    username=f"q{user}",
                )
            for _ in range(2000):  # until they all wait in the worker pool's queue
                if app.pool.pending >= queued:
                    break
                await asyncio.sleep(0.005)
            waiting = app.pool.pending
            asked = time.perf_counter()
            messages_before = len(fake.sent("sendMessage"))
            fake.send_text("!help", chat_id=-9999, user_id=9999, username="helpme")
            while not any(
                c.fields.get("chat_id") == "-9999"
                for c in fake.sent("sendMessage")[messages_before:]
            ):
                await asyncio.sleep(0.002)
            help_ms = (time.perf_counter() - asked) * 1000
            await fake.wait_for("sendDocument", users + queued, timeout=1200)
        finally:
            await front_end.stop()
            await app.close()
            await fake.stop()
    return {
        "users": users,
        "melodies_per_s": users / elapsed,
        "p50_s": statistics.median(latencies),
        "p95_s": statistics.quantiles(latencies, n=20)[-1],
        "help_ms": help_ms,
        "queued_while_help": waiting,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--queued", type=int, default=20)
    parser.add_argument("--no-audio", action="store_true", help="skip the MP3 previews")
    args = parser.parse_args()
    result = asyncio.run(run(args.users, args.queued, not args.no_audio))
    rows = [
        ("measure", "value"),
        (
            f"{result['users']} users at once: melodies per second",
            f"{result['melodies_per_s']:.2f}",
        ),
        ("time to reply (MIDI uploaded): p50", f"{result['p50_s']:.1f} s"),
        ("time to reply (MIDI uploaded): p95", f"{result['p95_s']:.1f} s"),
        (
            f"!help with {result['queued_while_help']} melodies pending",
            f"{result['help_ms']:.0f} ms",
        ),
    ]
    report("The bot under load (Telegram, loopback API)", rows, {"bench": "bot"} | result)


if __name__ == "__main__":
    main()
