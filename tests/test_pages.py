"""The melody pages through a real web server, read by a real HTTP client and drawn by a real
headless Chromium: what a reader of a shared link gets, and what they no longer get."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from music21 import converter
from PIL import Image

from bot.app import open_app
from bot.config import Settings
from bot.health import Heartbeat
from bot.incoming import Incoming
from bot.pages.server import PageServer
from generator.render import audio_available
from tests.browser import headless_chromium
from tests.polling import whole

PUBLIC = "https://melodies.example.org"


@pytest.fixture
async def served(tmp_path, tiny_model_dir):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        model_dir=tiny_model_dir,
        cooldown_s=0,
        health_port=0,
        public_url=PUBLIC,
    )
    app = await open_app(settings)
    heartbeat = Heartbeat(settings, ["test"], routes=PageServer(app).routes())
    await heartbeat.start()
    yield app, f"http://127.0.0.1:{heartbeat.port}"
    await heartbeat.stop()
    await app.close()


def say(text: str, user: str = "u-4711", name: str = "Ann", chat: str = "chat-99") -> Incoming:
    return Incoming("test", chat, user, name, text)


async def moderator() -> bool:
    return True


async def _melody(app, text: str = "!melody C4 D4 E4 bars=4 seed=3", **who):
    reply = await whole(await app.core.handle(say(text, **who)))
    (page_id,) = re.findall(rf"Page: {re.escape(PUBLIC)}/m/(\S+)", reply.text)
    return reply, page_id


async def _get(base: str, path: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as session, session.get(base + path) as response:
        return response.status, dict(response.headers), await response.read()


async def test_a_melody_page_has_its_score_player_and_files(served):
    app, base = served
    reply, page_id = await _melody(app)
    status, headers, body = await _get(base, f"/m/{page_id}")
    page = body.decode()
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-cache" and headers["X-Content-Type-Options"] == "nosniff"
    assert reply.text.splitlines()[0] in page  # the reply's first line is the page's title
    assert "!melody C4 D4 E4 temp=1 bars=4 seed=3" in page  # the request, to make another
    for private in ("u-4711", "chat-99", "Ann", "/m/1"):  # no ids, no name unless the chat asks
        assert private not in page
    status, headers, midi = await _get(base, f"/m/{page_id}/melody.mid")
    assert midi == reply.attachment("midi").data and "attachment" in headers["Content-Disposition"]
    status, headers, xml = await _get(base, f"/m/{page_id}/melody.musicxml")
    score = converter.parseData(xml, format="musicxml")
    assert len(score.parts[0].getElementsByClass("Measure")) == 4
    status, headers, svg = await _get(base, f"/m/{page_id}/score.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and b"<svg" in svg[:200]
    assert headers["Cache-Control"].startswith("public, max-age=")
    assert (await _get(base, "/m/not-a-page"))[0] == 404


async def test_the_page_draws_its_score_and_plays_its_audio_in_a_browser(served, tmp_path):
    app, base = served
    _, page_id = await _melody(app)
    await _get(base, f"/m/{page_id}/score.svg")  # made once, before the browser asks

    def look() -> dict:
        with headless_chromium() as browser:
            browser.set_window_size(1200, 900)
            browser.get(f"{base}/m/{page_id}")
            seen = {}
            for _ in range(100):  # up to 10 s for the score and the audio's metadata
                seen = browser.execute_script(
                    """const img = document.querySelector('.score img');
                       const audio = document.querySelector('audio');
                       const box = img.getBoundingClientRect();
                       return {loaded: img.complete && img.naturalWidth > 0,
                               width: box.width, height: box.height,
                               duration: audio ? audio.duration : null,
                               error: audio && audio.error ? audio.error.code : null};"""
                )
                if seen["loaded"] and (seen["duration"] or 0) > 0:
                    break
                time.sleep(0.1)
            browser.save_screenshot(str(tmp_path / "page.png"))
            return seen

    seen = await asyncio.to_thread(look)
    assert seen["loaded"] and seen["width"] > 500 and seen["height"] > 50
    if audio_available()[0]:
        assert seen["error"] is None and 9 < seen["duration"] < 13  # 4 bars of 4/4 at 100 bpm
    shot = Image.open(tmp_path / "page.png").convert("L")
    assert shot.getextrema()[0] < 50  # something dark was drawn: the notes, the title


async def test_forgotten_and_banned_melodies_answer_gone(served):
    app, base = served
    _, page_id = await _melody(app)
    _, other_id = await _melody(app, user="u-5", name="Bob")
    await app.core.handle(say("!ban Bob 1h", user="mod", name="Mod"), is_moderator=moderator)
    assert (await _get(base, f"/m/{other_id}"))[0] == 410  # banned: not shown while it lasts
    await app.core.handle(say("!unban Bob", user="mod", name="Mod"), is_moderator=moderator)
    assert (await _get(base, f"/m/{other_id}"))[0] == 200
    assert (await _get(base, f"/m/{page_id}/score.svg"))[0] == 200
    await app.core.handle(say("!forgetme confirm"))
    status, _, body = await _get(base, f"/m/{page_id}")
    assert status == 410 and b"no longer here" in body
    assert (await _get(base, f"/m/{page_id}/score.svg"))[0] == 410  # no copy outlives it
    assert (await _get(base, f"/m/{page_id}/melody.mid"))[0] == 410


async def test_a_gallery_lists_a_chat_that_asks_for_one(served):
    app, base = served
    await _melody(app)
    await _melody(app, "!melody G4 A4 B4 bars=2 seed=1", user="u-5", name="Bob")
    await _melody(app, "!melody E4 bars=2 seed=1", chat="another chat")
    switched = await app.core.handle(say("!gallery on", user="mod"), is_moderator=moderator)
    (path,) = re.findall(r"/g/\S+", switched.text)
    path = path.rstrip(" .")
    status, _, body = await _get(base, path)
    page = body.decode()
    assert status == 200 and page.count("<li>") == 2  # this chat's two, not the other's
    assert page.index(">#2 · ") < page.index(">#1 · ")  # newest first
    assert "Bob" not in page and "Ann" not in page
    await app.core.handle(say("!gallery names", user="mod"), is_moderator=moderator)
    page = (await _get(base, path))[2].decode()
    assert "Bob" in page and "Ann" in page
    melody_page = re.findall(r'href="(/m/[^"]+)"', page)[0]
    assert "Bob" in (await _get(base, melody_page))[2].decode()  # names on the pages too
    assert (await _get(base, path + "?page=first"))[0] == 400
    assert "<li>" not in (await _get(base, path + "?page=2"))[2].decode()  # past the last one
    await app.core.handle(say("!gallery off", user="mod"), is_moderator=moderator)
    assert (await _get(base, path))[0] == 410
    assert "Bob" not in (await _get(base, melody_page))[2].decode()


async def test_a_file_asked_for_by_many_readers_at_once_is_made_once():
    from bot.pages.files import MadeOnce

    made = []

    async def make() -> bytes:
        made.append(1)
        await asyncio.sleep(0.05)
        return b"score"

    files = MadeOnce(budget_bytes=8)
    got = await asyncio.gather(*(files.get(("page", "svg"), make) for _ in range(50)))
    assert got == [b"score"] * 50 and len(made) == 1
    assert await files.get(("page", "svg"), make) == b"score" and len(made) == 1  # kept
    await files.get(("other", "svg"), make)  # 10 bytes in a budget of 8: the older goes
    await files.get(("page", "svg"), make)
    assert len(made) == 3
    files.forget("page")
    await files.get(("page", "svg"), make)
    assert len(made) == 4
