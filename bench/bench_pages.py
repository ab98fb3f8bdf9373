"""The melody pages under readers: N readers at once, each opening a shared melody's page and
loading what a browser loads with it (the stylesheet, the score, the audio preview), through
the real page server, worker pool, shipped model and database.

1. Cold: the melodies were just composed, so the first readers wait for each score and preview
   to be made (once per melody, however many ask at the same moment).
2. Warm: the same again, everything made.
Per request kind: p50 / p95 latency, and requests per second overall.

    python -m bench.bench_pages --help
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import report
from melodybot.environment import configure_process

PUBLIC = "https://melodies.example.org"
FILES = ("/static/page.css", "score.svg", "preview.mp3")


async def _reader(session, base: str, page_id: str, times: dict[str, list[float]]) -> None:
    """One reader: the page, then its files as a browser would fetch them (in parallel)."""

    async def get(kind: str, path: str) -> None:
        started = time.perf_counter()
        async with session.get(base + path) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
        times.setdefault(kind, []).append(time.perf_counter() - started)

    await get("page", f"/m/{page_id}")
    await asyncio.gather(
        *(get(name, name if name.startswith("/") else f"/m/{page_id}/{name}") for name in FILES)
    )


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def run(readers: int, melodies: int) -> dict[str, object]:
    import aiohttp

    from bot.app import open_app
    from bot.config import Settings
    from bot.health import Heartbeat
    from bot.incoming import Incoming
    from bot.pages.server import PageServer

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None,
            data_dir=Path(folder),
            cooldown_s=0,
            daily_quota=10_000,
            health_port=0,
            public_url=PUBLIC,
        )
        app = await open_app(settings)
        heartbeat = Heartbeat(settings, ["bench"], routes=PageServer(app).routes())
        await heartbeat.start()
        base = f"http://127.0.0.1:{heartbeat.port}"
        try:
            page_ids = []
            for number in range(melodies):
                reply = await app.core.handle(
                    Incoming(
                        "bench", "chat", f"u{number}", "Reader", f"!melody C4 D4 E4 seed={number}"
                    )
                )
                assert reply is not None and reply.follow_ups is not None
                await reply.follow_ups.gather()
                page_ids.append(re.findall(r"/m/(\S+)", reply.text)[0])
            rng = random.Random(1)
            results: dict[str, object] = {"readers": readers, "melodies": melodies}
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                for phase in ("cold", "warm"):
                    times: dict[str, list[float]] = {}
                    started = time.perf_counter()
                    await asyncio.gather(
                        *(
                            _reader(session, base, rng.choice(page_ids), times)
                            for _ in range(readers)
                        )
                    )
                    elapsed = time.perf_counter() - started
                    count = sum(len(v) for v in times.values())
                    results[f"{phase}_requests_per_s"] = count / elapsed
                    for kind, values in times.items():
                        p50, p95 = _percentiles(values)
                        results[f"{phase}_{kind.strip('/').split('/')[-1]}_p50_ms"] = p50 * 1000
                        results[f"{phase}_{kind.strip('/').split('/')[-1]}_p95_ms"] = p95 * 1000
            results["workers"] = app.settings.workers
        finally:
            await heartbeat.stop()
            await app.close()
    return results


def main() -> None:
    configure_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=50, help="readers at once")
    parser.add_argument("--melodies", type=int, default=5, help="shared melodies they open")
    args = parser.parse_args()
    r = asyncio.run(run(args.readers, args.melodies))
    rows = [("request", "cold p50 / p95", "warm p50 / p95")]
    for kind, label in (
        ("page", "the page (HTML)"),
        ("page.css", "its stylesheet"),
        ("score.svg", "the score (SVG)"),
        ("preview.mp3", "the audio preview (MP3)"),
    ):
        rows.append(
            (
                label,
                f"{r[f'cold_{kind}_p50_ms']:.0f} / {r[f'cold_{kind}_p95_ms']:.0f} ms",
                f"{r[f'warm_{kind}_p50_ms']:.0f} / {r[f'warm_{kind}_p95_ms']:.0f} ms",
            )
        )
    rows.append(
        (
            "requests per second",
            f"{r['cold_requests_per_s']:.0f}",
            f"{r['warm_requests_per_s']:.0f}",
        )
    )
    report(
        f"{r['readers']} readers at once on {r['melodies']} melody pages "
        f"({r['workers']} worker processes)",
        rows,
        {"bench": "pages"} | r,
    )


if __name__ == "__main__":
    main()
