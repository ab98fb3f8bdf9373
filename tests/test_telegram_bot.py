"""The Telegram front-end through the real python-telegram-bot, against a loopback Bot API."""

import asyncio
import io
import json
import sqlite3

import pytest
from music21 import converter
from PIL import Image
from telegram import Bot

from bot.app import open_app
from bot.config import Settings
from bot.telegram_bot import TelegramFrontEnd
from generator.render import audio_available
from tests.fakes.telegram_api import FakeTelegram
from tests.polling import delivered_melody, eventually, failed_melody

ADMIN = 99


def _settings_for(fake: FakeTelegram, tmp_path, tiny_model_dir, **values) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        model_dir=tiny_model_dir,
        telegram_token="123456:TEST-TOKEN",
        telegram_base_url=fake.base_url,
        cooldown_s=0,
        **values,
    )


@pytest.fixture
async def telegram(tmp_path, tiny_model_dir):
    fake = FakeTelegram(admins={ADMIN})
    await fake.start()
    app = await open_app(_settings_for(fake, tmp_path, tiny_model_dir))
    front_end = TelegramFrontEnd(app)
    await front_end.start()
    yield fake, app
    await front_end.stop()
    await app.close()
    await fake.stop()


async def test_melody_arrives_text_and_midi_first_then_photo_and_voice_note(telegram):
    fake, app = telegram
    fake.send_text("/melody C4 D4 E4 temp=0.7 seed=3 bars=4")
    document = (await fake.wait_for("sendDocument"))[0]
    photo = (await fake.wait_for("sendPhoto"))[0]
    midi = converter.parseData(document.files["document"], format="midi")
    assert [n.pitch.nameWithOctave for n in midi.flatten().notes[:3]] == ["C4", "D4", "E4"]
    image = Image.open(io.BytesIO(photo.files["photo"]))
    assert image.format == "PNG" and image.width >= 1000
    later = [photo]
    if audio_available()[0]:
        voice = (await fake.wait_for("sendVoice"))[0]
        ogg = voice.files["voice"]
        assert ogg[:4] == b"OggS" and b"OpusHead" in ogg[:100]  # Telegram plays it inline
        later.append(voice)
    assert document.at < min(call.at for call in later)  # the melody itself comes first
    text = document.fields["caption"]  # the text rides on the file: one message
    assert text.startswith("#1 · key C") and "!again 1" in text
    assert not fake.sent("sendMessage")
    messages = [c for c in fake.calls if c.method.startswith("send") and "Action" not in c.method]
    assert len(messages) == len(later) + 1  # a melody is 3 messages (it was 4): file, photo, voice
    user = await app.repo.find_user("telegram", "7")
    (stored,) = await app.repo.history(user.id)
    assert stored.status == "done" and stored.midi == document.files["document"]
    assert stored.chat_id == "-100"
    everyone, administrators = fake.sent("setMyCommands")
    assert '"melody"' in everyone.fields["commands"]
    assert '"setlimit"' not in everyone.fields["commands"] and "scope" not in everyone.fields
    # a group's administrators (its moderators) see the moderators' commands as well
    assert json.loads(administrators.fields["scope"]) == {"type": "all_chat_administrators"}
    assert {'"melody"', '"setlimit"', '"ban"'} <= {
        f'"{c["command"]}"' for c in json.loads(administrators.fields["commands"])
    }


async def test_the_chat_shows_work_under_way_only_when_it_takes_a_while(telegram):
    from bot.telegram_bot import chat_action_if_slow

    fake, _ = telegram
    where = {"chat_id": 55, "message_thread_id": None}
    async with Bot("123456:TEST-TOKEN", base_url=f"{fake.base_url}/bot") as bot:
        async with chat_action_if_slow(bot, where, "upload_photo"):
            pass  # ready at once: no "sending a photo…", which would spend a request
        async with chat_action_if_slow(bot, where, "upload_voice"):
            await asyncio.sleep(1.0)
    (action,) = await fake.wait_for("sendChatAction")
    assert action.fields["action"] == "upload_voice" and action.fields["chat_id"] == "55"
    async with (
        Bot("123456:TEST-TOKEN", base_url=f"{fake.base_url}/bot") as bot,
        chat_action_if_slow(bot, where, "upload_document"),
    ):
        await asyncio.sleep(5.5)  # longer than one action shows: it is renewed
    renewed = [c for c in fake.sent("sendChatAction") if c.fields["action"] == "upload_document"]
    assert len(renewed) == 2


async def test_bad_input_gets_a_friendly_reply(telegram):
    fake, _ = telegram
    fake.send_text("!melody X4 temp=0.5")
    reply = (await fake.wait_for("sendMessage"))[0].fields["text"]
    assert "I don't know the note 'X4'" in reply and "Try: !melody" in reply
    fake.send_text("/melody@another_bot C4")  # meant for another bot: no answer
    fake.send_text("/nonsense")
    replies = await fake.wait_for("sendMessage", 2)
    assert "I don't know the command /nonsense" in replies[1].fields["text"]
    assert len(fake.sent("sendMessage")) == 2


async def test_moderator_commands_need_a_group_admin(telegram):
    fake, app = telegram
    fake.send_text("/setlimit daily 3", user_id=7, username="ann")
    refused = (await fake.wait_for("sendMessage"))[0].fields["text"]
    assert "for moderators" in refused
    fake.send_text("/setlimit daily 3", user_id=ADMIN, username="boss")
    accepted = (await fake.wait_for("sendMessage", 2))[1].fields["text"]
    assert "daily is now 3" in accepted
    assert (await app.repo.effective_limits("telegram", "-100")).daily_quota == 3
    (entry,) = await app.repo.audit_log("telegram", "-100")
    assert entry.action == "set daily_quota" and entry.actor == f"boss ({ADMIN})"


async def test_moderator_check_failing_on_telegram_is_a_clear_answer(telegram, caplog):
    fake, app = telegram
    fake.failing["getChatMember"] = (400, "Bad Request: member list is inaccessible")
    with caplog.at_level("ERROR", logger="melodybot"):
        fake.send_text("/setlimit daily 3", user_id=ADMIN, username="boss")
        answer = (await fake.wait_for("sendMessage"))[0].fields["text"]
    assert "couldn't ask Telegram whether you administer this chat" in answer
    assert (await app.repo.effective_limits("telegram", "-100")).daily_quota != 3  # fails safe
    assert not [r for r in caplog.records if "failed" in r.getMessage()]  # no incident


async def test_one_user_flooding_a_group_with_mistakes_does_not_starve_the_others(telegram):
    fake, _ = telegram
    for i in range(60):
        fake.send_text(f"/melody X{i}", user_id=7, username="ann")
    fake.send_text("/limits", user_id=8, username="bob")

    async def answered_bob() -> bool:
        return any(
            "melodies per person per day" in c.fields["text"] for c in fake.sent("sendMessage")
        )

    for _ in range(200):  # Telegram lets a group have 20 messages a minute: 60 replies would
        if await answered_bob():  # hold bob's back for two minutes
            break
        await asyncio.sleep(0.05)
    assert await answered_bob()
    complaints = [
        c for c in fake.sent("sendMessage") if "I don't know the note" in c.fields["text"]
    ]
    assert len(complaints) == 3


async def test_a_picture_telegram_refuses_still_leaves_the_user_the_midi(telegram):
    fake, _ = telegram
    fake.failing["sendPhoto"] = (400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    fake.send_text("/melody C4 D4 E4 seed=2 bars=2")
    (midi,) = await fake.wait_for("sendDocument")
    assert midi.files  # the melody itself arrived
    assert await _wait_for_text(fake, "would not take the score picture")


async def test_a_melody_telegram_will_not_deliver_gives_its_quota_slot_back(telegram):
    fake, app = telegram
    fake.failing["sendDocument"] = (403, "Forbidden: bot was blocked by the user")
    fake.send_text("/melody C4 D4 E4 seed=7 bars=2")
    record = await eventually(lambda: failed_melody(app.repo, 1))
    assert "not delivered" in record.error
    with sqlite3.connect(app.settings.database) as db:
        assert db.execute("SELECT counts FROM usage WHERE generation_id = 1").fetchone() == (0,)


async def test_passing_faults_of_telegram_cost_no_melody(telegram):
    """A 502 and a dropped answer on the MIDI, flood control on the text, a 500 that will not go
    away on the picture: the user still gets the melody, and it counts against the quota."""
    fake, app = telegram
    fake.fail_next["sendMessage"] = [(429, "Too Many Requests: retry after 1")]
    fake.fail_next["sendDocument"] = [(502, "Bad Gateway"), (500, "Internal Server Error")]
    fake.failing["sendPhoto"] = (500, "Internal Server Error")
    fake.send_text("/melody C4 D4 E4 seed=8 bars=2")
    documents = await fake.wait_for("sendDocument", 3)
    assert [d.status for d in documents] == [502, 500, 200]
    assert documents[-1].files  # the melody itself arrived
    notes = await _wait_for_text(fake, "would not take the score picture")
    assert notes
    record = await app.repo.get_melody(1)
    assert record.status == "done" and record.midi == documents[-1].files["document"]
    with sqlite3.connect(app.settings.database) as db:
        assert db.execute("SELECT counts FROM usage WHERE generation_id = 1").fetchone() == (1,)


async def _wait_for_text(fake: FakeTelegram, part: str) -> list[str]:
    def texts() -> list[str]:
        sent = [c.fields["text"] for c in fake.sent("sendMessage") if c.ok]
        return sent if any(part in text for text in sent) else []

    return await eventually(texts)


async def test_a_message_a_killed_process_received_is_answered_by_the_next_once(
    tmp_path, tiny_model_dir
):
    """Telegram forgets an update once the next ones are fetched: a process killed after that,
    before it recorded the request, leaves it in the inbox, and the next process answers it. One
    whose melody was already reserved is not composed twice."""
    from storage import AlreadyReceived

    fake = FakeTelegram()
    await fake.start()
    settings = _settings_for(fake, tmp_path, tiny_model_dir, audio=False)
    app = await open_app(settings)
    for update_id, text in ((501, "/melody C4 D4 E4 seed=3 bars=2"), (502, "/melody G4 A4 bars=2")):
        message = {
            "message_id": update_id,
            "date": 1_800_000_000,
            "chat": {"id": 40, "type": "private"},
            "from": {"id": 40, "is_bot": False, "first_name": "Eve", "username": "eve"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        }
        await app.repo.inbox_add(
            "telegram", update_id, json.dumps({"update_id": update_id, "message": message})
        )
    user = await app.repo.upsert_user("telegram", "40", "eve")
    reserved = await app.repo.reserve_melody(  # 502 got as far as its reservation
        user, "telegram", "40", "x", {}, "m", "v", 1, source="telegram:update:502"
    )
    with pytest.raises(AlreadyReceived):
        await app.repo.reserve_melody(
            user, "telegram", "40", "x", {}, "m", "v", 1, source="telegram:update:502"
        )
    front_end = TelegramFrontEnd(app)
    await front_end.start()
    try:
        (midi,) = await fake.wait_for("sendDocument")
        await eventually(lambda: _inbox_empty(app))
        await asyncio.sleep(0.5)
        assert len(fake.sent("sendDocument")) == 1  # 502 made no second melody
    finally:
        await front_end.stop()
        await app.close()
        await fake.stop()
    assert midi.fields["chat_id"] == "40"
    with sqlite3.connect(settings.database) as db:
        sources = db.execute("SELECT id, source FROM generations ORDER BY id").fetchall()
    assert sources == [(reserved, "telegram:update:502"), (reserved + 1, "telegram:update:501")]


async def test_every_update_is_in_the_inbox_until_handled(telegram):
    fake, app = telegram
    fake.send_text("/melody C4 D4 E4 seed=2 bars=2")
    await fake.wait_for("sendDocument")
    await eventually(lambda: _inbox_empty(app))
    record = await eventually(lambda: delivered_melody(app.repo, 1))
    assert record.source == "telegram:update:1"


async def _inbox_empty(app) -> bool:
    return await app.repo.inbox("telegram") == []


def test_a_score_too_tall_for_a_telegram_photo_goes_as_a_file():
    import io

    from PIL import Image

    from bot.telegram_bot import fits_as_photo

    def png(width: int, height: int) -> bytes:
        out = io.BytesIO()
        Image.new("L", (width, height), 255).save(out, format="PNG")
        return out.getvalue()

    assert fits_as_photo(png(1400, 3000))
    assert not fits_as_photo(png(1400, 9000))  # sides add up to more than 10,000 px
    assert not fits_as_photo(png(300, 7000))  # more than 20 times taller than wide


async def test_again_and_vary_are_buttons_under_the_melody(telegram):
    fake, app = telegram
    fake.send_text("/melody C4 D4 E4 temp=0.7 seed=3 bars=2")
    (document,) = await fake.wait_for("sendDocument")
    keyboard = json.loads(document.fields["reply_markup"])["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for b in keyboard[0]] == [
        ("Again", "again 1 seed=new"),
        ("Vary", "again 1 temp=0.9"),
    ]
    fake.press("again 1 temp=0.9", document, user_id=8, username="bob")  # anyone in the chat
    await fake.wait_for("answerCallbackQuery")
    await fake.wait_for("sendDocument", 2)
    varied = await eventually(lambda: delivered_melody(app.repo, 2))
    assert varied.request["canonical"] == "C4 D4 E4 temp=0.9 bars=2 seed=3"
    bob = await app.repo.find_user("telegram", "8")
    assert varied.user_id == bob.id  # the melody is the presser's, on their quota


async def test_a_deep_link_opens_the_melody_it_names(telegram):
    fake, app = telegram
    fake.send_text("/melody G4 A4 B4 seed=5 bars=2")
    (first,) = await fake.wait_for("sendDocument")
    await eventually(lambda: delivered_melody(app.repo, 1))
    fake.send_text("/start m1")  # what t.me/<bot>?start=m1 sends
    documents = await fake.wait_for("sendDocument", 2)
    assert documents[1].files["document"] == first.files["document"]
    assert documents[1].fields["caption"].startswith("#1 · ")


async def test_remix_answering_a_melody_composes_from_its_opening(telegram):
    fake, app = telegram
    fake.send_text("/melody G4 A4 B4 seed=5 bars=2")
    (first,) = await fake.wait_for("sendDocument")
    fake.send_text("/remix", answering=first, user_id=8, username="bob")
    await fake.wait_for("sendDocument", 2)
    remixed = await eventually(lambda: delivered_melody(app.repo, 2))
    assert remixed.request["canonical"].startswith("G4 A4 B4 temp=1 bars=2 seed=")
    assert remixed.rng_seed != 5


@pytest.fixture
async def inline_telegram(tmp_path, tiny_model_dir):
    fake = FakeTelegram()
    await fake.start()
    settings = _settings_for(
        fake, tmp_path, tiny_model_dir, audio=False, public_url="https://melodies.example.org"
    )
    app = await open_app(settings)
    front_end = TelegramFrontEnd(app)
    await front_end.start()
    yield fake, app
    await front_end.stop()
    await app.close()
    await fake.stop()


def _results(call) -> list[dict]:
    return json.loads(call.fields["results"])


async def test_inline_mode_offers_the_melody_with_its_page(inline_telegram):
    fake, app = inline_telegram
    for typed in ("C4", "C4 D4", "C4 D4 E4 seed=1"):  # typed on: only the last is composed
        fake.inline(typed)
    (answer,) = await fake.wait_for("answerInlineQuery")
    (result,) = _results(answer)
    record = await app.repo.get_melody(1)
    page = f"https://melodies.example.org/m/{record.page_id}"
    assert result["type"] == "audio" and result["audio_url"] == f"{page}/preview.mp3"
    assert result["title"].startswith("#1 · key C") and page in result["caption"]
    assert record.request["canonical"].startswith("C4 D4 E4 ") and record.chat_id == "inline"
    assert await app.repo.get_melody(2) is None  # nothing composed for what was typed before
    fake.inline("C4 D4 E4 seed=1")  # asked again: the melody already made, no second one
    answers = await fake.wait_for("answerInlineQuery", 2)
    assert _results(answers[1])[0]["id"] == result["id"]
    assert await app.repo.get_melody(2) is None


async def test_inline_mistakes_and_bans_answer_with_a_note(inline_telegram):
    fake, app = inline_telegram
    fake.inline("X4 D4")
    (note,) = _results((await fake.wait_for("answerInlineQuery"))[0])
    assert note["type"] == "article" and "I don't know the note 'X4'" in note["description"]
    troll = await app.repo.upsert_user("telegram", "66", "troll")
    await app.repo.ban("telegram", "", troll, "mod", "spam", None)  # everywhere on Telegram
    fake.inline("C4 D4 E4", user_id=66, username="troll")
    answers = await fake.wait_for("answerInlineQuery", 2)
    assert "can't use the bot here" in _results(answers[1])[0]["description"]


async def test_webhook_mode_takes_updates_telegram_posts_and_only_those(tmp_path, tiny_model_dir):
    """TELEGRAM_WEBHOOK_URL: updates come in over HTTP, as Telegram posts them behind a load
    balancer, instead of being polled; one without Telegram's secret is turned away."""
    import socket

    import aiohttp

    from bot.telegram_bot import webhook_secret

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = FakeTelegram()
    await fake.start()
    settings = _settings_for(
        fake,
        tmp_path,
        tiny_model_dir,
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/updates",
        telegram_webhook_port=port,
        audio=False,
    )
    app = await open_app(settings)
    front_end = TelegramFrontEnd(app)
    await front_end.start()
    try:
        (registered,) = fake.sent("setWebhook")
        assert registered.fields["url"] == settings.telegram_webhook_url
        assert registered.fields["secret_token"] == webhook_secret(settings)
        assert not fake.sent("getUpdates")
        update = {
            "update_id": 501,
            "message": {
                "message_id": 9,
                "date": 1,
                "chat": {"id": 55, "type": "private", "first_name": "Ann"},
                "from": {"id": 55, "is_bot": False, "first_name": "Ann", "username": "ann"},
                "text": "/melody C4 D4 E4 bars=2 seed=1",
                "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
            },
        }
        async with aiohttp.ClientSession() as session:
            forged = {"X-Telegram-Bot-Api-Secret-Token": "guessed"}
            async with session.post(registered.fields["url"], json=update, headers=forged) as r:
                assert r.status == 403
            real = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(settings)}
            async with session.post(registered.fields["url"], json=update, headers=real) as r:
                assert r.status == 200
        (document,) = await fake.wait_for("sendDocument")
        assert document.fields["chat_id"] == "55" and document.files["document"][:4] == b"MThd"
        assert len(fake.sent("sendDocument")) == 1  # the forged one made nothing
    finally:
        await front_end.stop()
        await app.close()
        await fake.stop()
    assert not fake.sent("deleteWebhook")  # the other processes behind it go on
