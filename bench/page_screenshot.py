"""Draw a melody's web page in headless Chromium and keep the picture for README
(docs/examples/melody-page.png): the shipped model, the real page server, Debian's chromium.

    python -m bench.page_screenshot [--out docs/examples/melody-page.png]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

from melodybot.environment import configure_process

REQUEST = "!melody G4:0.5 C5 C5 D5 meter=3/4 seed=2"


async def shoot(out: Path) -> None:
    from bot.app import open_app
    from bot.config import Settings
    from bot.health import Heartbeat
    from bot.incoming import Incoming
    from bot.pages.server import PageServer
    from tests.browser import headless_chromium

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None, data_dir=Path(folder), health_port=0, public_url="http://x"
        )
        app = await open_app(settings)
        heartbeat = Heartbeat(settings, ["docs"], routes=PageServer(app).routes())
        await heartbeat.start()
        try:
            reply = await app.core.handle(Incoming("docs", "chat", "u", "Ann", REQUEST))
            assert reply is not None and reply.follow_ups is not None
            await reply.follow_ups.gather()
            (page_id,) = re.findall(r"/m/(\S+)", reply.text)
            url = f"http://127.0.0.1:{heartbeat.port}/m/{page_id}"

            def draw() -> None:
                with headless_chromium() as browser:
                    browser.set_window_size(1100, 1000)
                    browser.get(url)
                    for _ in range(100):
                        if browser.execute_script(
                            "const i = document.querySelector('.score img');"
                            "return i.complete && i.naturalWidth > 0;"
                        ):
                            break
                        time.sleep(0.1)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    browser.save_screenshot(str(out))

            await asyncio.to_thread(draw)
        finally:
            await heartbeat.stop()
            await app.close()
    print(f"wrote {out}")


def main() -> None:
    configure_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/examples/melody-page.png"))
    asyncio.run(shoot(parser.parse_args().out))


if __name__ == "__main__":
    main()
