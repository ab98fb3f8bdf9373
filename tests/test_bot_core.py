"""The command core with a real model, database and renderers, as every front-end uses it."""

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import open_app
from bot.commands import CommandError, parse_command
from bot.config import Settings
from bot.incoming import Incoming
from bot.registry import commands
from tests.polling import whole


async def _open(tmp_path, tiny_model_dir, **limits):
    """The bot with the tiny model, no audio, and these limits (no cooldown unless given)."""
    values = {"cooldown_s": 0, "daily_quota": 1000} | limits
    return await open_app(
        Settings(_env_file=None, data_dir=tmp_path, model_dir=tiny_model_dir, audio=False, **values)
    )


@pytest.fixture
async def app(tmp_path, tiny_model_dir):
    application = await _open(tmp_path, tiny_model_dir)
    yield application
    await application.close()


async def answer(core, message: Incoming, **options):
    """The core's reply with the picture and audio that follow it."""
    return await whole(await core.handle(message, **options))


def say(text: str, user: str = "ann", chat: str = "club") -> Incoming:
    return Incoming("test", chat, user, user.title(), text)


async def moderator() -> bool:
    return True


def test_parser_finds_commands_and_ignores_chat():
    assert parse_command("hello there") is None
    assert parse_command("!") is None and parse_command("!!!") is None
    assert parse_command("!melody C4 D4").argument == "C4 D4"
    assert parse_command("/melody@MyBot C4", ("!", "/"), "mybot").name == "melody"
    assert parse_command("/melody@OtherBot C4", ("!", "/"), "mybot") is None
    assert parse_command("/start", ("!", "/")).name == "help"
    with pytest.raises(CommandError, match="I don't know the command !dance"):
        parse_command("!dance")


async def test_melody_again_show_history_and_forget(app):
    reply = await answer(app.core, say("!melody C4 D4 E4 seed=4 bars=4"))
    assert reply.melody_id == 1 and {a.kind for a in reply.attachments} >= {"midi", "png"}
    assert " · 4 bars · " in reply.text.splitlines()[0]
    waltz = await answer(app.core, say("!melody G4 C5 E5 meter=3/4 pickup=1 bars=6 seed=2"))
    assert " · 6 bars of 3/4 with an upbeat · " in waltz.text.splitlines()[0]
    midi = reply.attachment("midi").data
    again = await answer(app.core, say("!again 1 temp=1.5"))
    assert again.melody_id == 3 and "temp 1.5 · seed 4" in again.text
    shown = await answer(app.core, say("!show 1", user="bob"))  # anyone in the chat may
    assert shown.attachment("midi").data == midi and shown.melody_id == 1
    elsewhere = await answer(app.core, say("!show 1", chat="another chat"))
    assert "can't find melody #1 in this chat" in elsewhere.text
    history = await answer(app.core, say("!history"))
    assert history.text.splitlines()[1].startswith("#3 ·") and "#1 ·" in history.text
    asked = await answer(app.core, say("!forgetme"))
    assert "deletes all 3" in asked.text
    done = await answer(app.core, say("!forgetme confirm"))
    assert "deleted 3" in done.text
    assert "no melodies yet" in (await answer(app.core, say("!history"))).text


async def test_limits_apply_and_moderators_change_them(app):
    refused = await answer(app.core, say("!setlimit maxbars 4"))
    assert "for moderators" in refused.text
    changed = await answer(app.core, say("!setlimit maxbars 4"), is_moderator=moderator)
    assert "maxbars is now 4" in changed.text
    too_long = await answer(app.core, say("!melody C4 bars=8"))
    assert "at most 4 bars" in too_long.text and "bars=4" in too_long.text
    await answer(app.core, say("!setlimit daily 1"), is_moderator=moderator)
    assert (await answer(app.core, say("!melody C4 bars=2"))).melody_id is not None
    assert "had your 1 melody" in (await answer(app.core, say("!melody C4 bars=2"))).text
    await answer(app.core, say("!disable"), is_moderator=moderator)
    assert "switched off" in (await answer(app.core, say("!melody C4 bars=2", user="cy"))).text
    audit = await answer(app.core, say("!audit"), is_moderator=moderator)
    assert audit.text.count("Ann (ann)") == 3


async def test_ban_by_name_with_duration_and_unban(app):
    await answer(app.core, say("!melody C4 bars=2", user="troll"))
    banned = await answer(app.core, say("!ban troll 2h spamming"), is_moderator=moderator)
    assert "Troll can't use the bot here until" in banned.text
    refused = await answer(app.core, say("!melody C4 bars=2", user="troll"))
    assert "can't use the bot here until" in refused.text and "spamming" in refused.text
    unknown = await answer(app.core, say("!ban nobody"), is_moderator=moderator)
    assert "I don't know anyone called nobody" in unknown.text
    lifted = await answer(app.core, say("!unban troll"), is_moderator=moderator)
    assert "may use the bot here again" in lifted.text
    assert (await answer(app.core, say("!melody C4 bars=2", user="troll"))).melody_id


async def test_help_for_every_command(app):
    overview = await answer(app.core, say("!help"))
    for spec in commands():
        assert f"!{spec.name}" in overview.text
        detail = await answer(app.core, say(f"!help {spec.name}"))
        assert f"Example: !{spec.example}" in detail.text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda c, t: f"!{c} {t}",
            st.sampled_from([s.name for s in commands()]),
            st.text(max_size=40),
        ),
    )
)
async def test_any_text_gets_a_reply_or_silence_never_an_incident(app, caplog, text):
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="melodybot"):
        reply = await answer(app.core, say(text, user="fuzz"), is_moderator=moderator)
    assert reply is None or reply.text
    assert not [r for r in caplog.records if "failed" in r.getMessage()], text


@pytest.mark.parametrize(
    "text",
    ["!show 9223372036854775808", "!again 99999999999999999999999", "!show #18446744073709551616"],
)
async def test_huge_melody_numbers_are_unknown_melodies_not_incidents(app, caplog, text):
    with caplog.at_level(logging.ERROR, logger="melodybot"):
        reply = await answer(app.core, say(text))
    assert "I can't find melody #" in reply.text
    assert not [r for r in caplog.records if "failed" in r.getMessage()]


@pytest.mark.parametrize("separator", ["\t", "\n", "\u00a0", "\u2003"])
async def test_any_whitespace_ends_the_command_word(app, separator):
    reply = await answer(app.core, say(f"!help{separator}melody"))
    assert "I don't know the command" not in reply.text and "Example: !melody" in reply.text


async def test_a_lone_surrogate_gets_a_reply_that_can_be_sent(app):
    reply = await answer(app.core, say("!melody C4 \ud800 D4"))
    reply.text.encode("utf-8")  # would raise on a surrogate
    assert "\ufffd" in reply.text and "Try:" in reply.text


async def test_show_resends_the_stored_melody_without_recomposing_it(app):
    first = await answer(app.core, say("!melody G4:0.5 C5 C5 D5 meter=3/4 bars=4 seed=3"))
    png = first.attachment("png").data
    composed = app.pool.jobs_done["compose"]
    shown = await answer(app.core, say("!show 1", user="bob"))
    assert app.pool.jobs_done["compose"] == composed  # the model did not run again
    assert shown.attachment("midi").data == first.attachment("midi").data
    assert shown.attachment("png").data == png  # drawn again from the stored steps, the same
    assert shown.text.splitlines()[0] == first.text.splitlines()[0]  # 4 bars of 3/4, upbeat


async def test_show_obeys_bans_the_chat_switch_and_the_cooldown_not_the_quota(
    tmp_path, tiny_model_dir
):
    application = await _open(tmp_path, tiny_model_dir, cooldown_s=3600, daily_quota=1)
    try:
        core = application.core
        assert (await answer(core, say("!melody C4 D4 bars=2"))).melody_id == 1
        assert (await answer(core, say("!show 1", user="bob"))).melody_id == 1  # quota untouched
        again = await answer(core, say("!show 1", user="bob"))
        assert "Slow down a little" in again.text and not again.attachments
        await answer(core, say("!history", user="cy"))  # the bot knows cy by name now
        await answer(core, say("!ban cy 1h"), is_moderator=moderator)
        refused = await answer(core, say("!show 1", user="cy"))
        assert "can't use the bot here" in refused.text and not refused.attachments
        await answer(core, say("!disable"), is_moderator=moderator)
        off = await answer(core, say("!show 1", user="dee"))
        assert "switched off" in off.text and not off.attachments
    finally:
        await application.close()


async def test_show_of_a_melody_stored_without_its_steps_sends_the_midi(app):
    await answer(app.core, say("!melody C4 D4 bars=2 seed=1"))
    await app.repo._db.execute("UPDATE generations SET tokens = NULL WHERE id = 1")
    shown = await answer(app.core, say("!show 1"))
    assert [a.kind for a in shown.attachments] == ["midi"]
    assert "Only the MIDI file was kept" in shown.text


async def test_one_user_flooding_mistakes_hears_a_few_and_others_are_unaffected(app):
    answers = [await answer(app.core, say(f"!melody X{i}", user="flood")) for i in range(60)]
    heard = [a for a in answers if a is not None]
    assert len(heard) == 3 and all("I don't know the note" in a.text for a in heard)
    limits = await answer(app.core, say("!limits", user="bob"))  # another user, same chat
    assert limits is not None and "melodies per person per day" in limits.text
    melody = await answer(app.core, say("!melody C4 D4 bars=2", user="flood"))
    assert melody.melody_id is not None  # work that succeeds is never held back


def test_the_refusal_limit_opens_again_after_its_window():
    from bot.core import RateLimit

    now = [0.0]
    limit = RateLimit(2, 60.0, clock=lambda: now[0])
    assert [limit.allow(("u",)) for _ in range(3)] == [True, True, False]
    assert limit.allow(("other",))
    now[0] = 61.0
    assert limit.allow(("u",))


async def test_counts_of_one_are_said_in_the_singular(tmp_path, tiny_model_dir):
    application = await _open(tmp_path, tiny_model_dir, daily_quota=1, max_bars=1, max_seed_notes=1)
    try:
        core = application.core
        assert (await answer(core, say("!melody C4 bars=1"))).melody_id == 1
        refused = await answer(core, say("!melody C4 bars=1"))
        assert "had your 1 melody for today" in refused.text
        limits = await answer(core, say("!limits"))
        assert "1 melody per person per day" in limits.text
        assert "at most 1 bar and 1 starting note." in limits.text
        assert (await answer(core, say("!history"))).text.startswith("Your only melody:")
        assert "deletes your only melody" in (await answer(core, say("!forgetme"))).text
        assert "deleted 1 melody of yours" in (await answer(core, say("!forgetme confirm"))).text
    finally:
        await application.close()


async def test_musicxml_is_sent_when_asked_for(app):
    from music21 import converter

    plain = await answer(app.core, say("!melody C4 D4 E4 bars=3 seed=2"))
    assert plain.attachment("musicxml") is None
    asked = await answer(app.core, say("!melody C4 D4 E4 bars=3 seed=2 xml=yes"))
    score = converter.parseData(asked.attachment("musicxml").data, format="musicxml")
    assert len(score.parts[0].getElementsByClass("Measure")) == 3
    assert asked.attachment("midi").data == plain.attachment("midi").data
    shown = await answer(app.core, say(f"!show {plain.melody_id} xml"))
    assert shown.attachment("musicxml").data.startswith(b"<?xml")
    again = await answer(app.core, say(f"!again {asked.melody_id}"))
    assert again.attachment("musicxml") is None  # a way of sending, not part of the melody
