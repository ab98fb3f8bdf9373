"""The Discord front-end through the real discord.py client, against a loopback Discord."""

import asyncio
import io
import sqlite3

import discord
import pytest
import yarl
from music21 import converter
from PIL import Image

from bot.app import open_app
from bot.config import Settings
from bot.discord_bot import DiscordFrontEnd
from generator.render import audio_available
from tests.fakes.discord_api import (
    APP_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    FakeDiscord,
    user,
)
from tests.polling import delivered_melody, eventually, failed_melody


def _settings_for(fake: FakeDiscord, monkeypatch, **values) -> Settings:
    """Settings for a bot talking to ``fake``, and the real client pointed at it (both gateway
    and REST; monkeypatch restores them after the test)."""
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url)
    )
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    return Settings(
        _env_file=None,
        discord_token="fake.discord.token",
        discord_api_base_url=fake.api_base,
        **values,
    )


@pytest.fixture
async def discord_front_end(tmp_path, tiny_model_dir, monkeypatch):
    fake = FakeDiscord()
    await fake.start()
    settings = _settings_for(
        fake, monkeypatch, data_dir=tmp_path, model_dir=tiny_model_dir, cooldown_s=0
    )
    app = await open_app(settings)
    front_end = DiscordFrontEnd(app)
    await front_end.start()
    await asyncio.wait_for(front_end.bot.wait_until_ready(), 30)
    yield fake, front_end
    await front_end.stop()
    await app.close()
    await fake.stop()


@pytest.fixture
async def discord_bot(discord_front_end):
    fake, front_end = discord_front_end
    return fake, front_end.bot.app


def _files_by_suffix(posted) -> dict[str, bytes]:
    return {name.rsplit(".", 1)[-1]: data for name, data in posted.files.items()}


async def test_prefix_melody_posts_the_midi_then_adds_score_and_audio(discord_bot):
    fake, app = discord_bot
    await fake.send_message("!melody C4 D4 E4 temp=0.7 seed=3 bars=4")
    (posted,) = await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages")
    assert list(_files_by_suffix(posted)) == ["mid"]  # the melody itself, at once
    (edit,) = await fake.wait_for(lambda p: p.route.startswith(f"PATCH /channels/{CHANNEL_ID}/"))
    files = _files_by_suffix(edit)
    assert next(iter(edit.files)).endswith(".png")  # the score first, shown inline
    assert set(files) == ({"png", "mp3"} if audio_available()[0] else {"png"})
    assert edit.payload["attachments"][0]["id"]  # the MIDI stays on the message
    midi = converter.parseData(_files_by_suffix(posted)["mid"], format="midi")
    assert [n.pitch.nameWithOctave for n in midi.flatten().notes[:3]] == ["C4", "D4", "E4"]
    assert Image.open(io.BytesIO(files["png"])).width >= 1000
    assert posted.payload["content"].startswith("#1 · key C")
    buttons = [c["custom_id"] for row in posted.payload["components"] for c in row["components"]]
    assert buttons == ["run:again 1 seed=new", "run:again 1 temp=0.9"]
    assert any(p.route == f"POST /channels/{CHANNEL_ID}/typing" for p in fake.posted)
    user = await app.repo.find_user("discord", "7")
    (stored,) = await app.repo.history(user.id)
    assert stored.chat_id == GUILD_ID and stored.midi == _files_by_suffix(posted)["mid"]


async def test_slash_melody_defers_then_follows_up_with_files(discord_bot):
    fake, app = discord_bot
    await fake.send_slash(
        "melody",
        [
            {"name": "notes", "type": 3, "value": "G4 A4 B4"},
            {"name": "temp", "type": 10, "value": 0.9},
            {"name": "key", "type": 3, "value": "G"},
            {"name": "seed", "type": 4, "value": 11},
        ],
    )
    (deferred,) = await fake.wait_for(lambda p: p.route.endswith("/callback"))
    assert deferred.payload["type"] == 5  # "thinking…" while composing
    (follow_up,) = await fake.wait_for(lambda p: p.route.startswith(f"POST /webhooks/{APP_ID}/"))
    files = _files_by_suffix(follow_up)
    midi = converter.parseData(files["mid"], format="midi")
    assert [n.pitch.nameWithOctave for n in midi.flatten().notes[:3]] == ["G4", "A4", "B4"]
    assert "temp 0.9 · seed 11" in follow_up.payload["content"]
    assert "Redo: /again 1 · vary: /again 1 temp=1.1" in follow_up.payload["content"]
    (edit,) = await fake.wait_for(lambda p: p.route.startswith(f"PATCH /webhooks/{APP_ID}/"))
    assert "png" in _files_by_suffix(edit)  # the score added to that same follow-up
    registered = await app.repo.find_user("discord", "7")
    (stored,) = await app.repo.history(registered.id)
    assert stored.request["canonical"] == "G4 A4 B4 temp=0.9 bars=8 key=G seed=11"


async def test_slash_melody_takes_a_meter_choice_and_an_upbeat(discord_bot):
    fake, app = discord_bot
    await fake.send_slash(
        "melody",
        [
            {"name": "notes", "type": 3, "value": "G4 C5 E5"},
            {"name": "bars", "type": 4, "value": 4},
            {"name": "meter", "type": 3, "value": "3/4"},
            {"name": "pickup", "type": 10, "value": 1.0},
            {"name": "seed", "type": 4, "value": 5},
        ],
    )
    (follow_up,) = await fake.wait_for(lambda p: p.route.startswith(f"POST /webhooks/{APP_ID}/"))
    assert " · 4 bars of 3/4 with an upbeat · " in follow_up.payload["content"]
    registered = await app.repo.find_user("discord", "7")
    (stored,) = await app.repo.history(registered.id)
    assert stored.request["canonical"] == "G4 C5 E5 temp=1 bars=4 meter=3/4 pickup=1 seed=5"


async def test_slash_errors_are_ephemeral(discord_bot):
    fake, _ = discord_bot
    await fake.send_slash("melody", [{"name": "notes", "type": 3, "value": "X4"}])
    (answer,) = await fake.wait_for(lambda p: p.route.endswith("/callback"))
    assert answer.payload["type"] == 4
    assert answer.payload["data"]["flags"] & 64  # ephemeral
    assert "I don't know the note 'X4'" in answer.payload["data"]["content"]
    assert "Try: /melody " in answer.payload["data"]["content"]  # as they asked: a slash command


async def test_moderator_commands_need_manage_server(discord_bot):
    fake, app = discord_bot
    sent = f"POST /channels/{CHANNEL_ID}/messages"
    await fake.send_message("!ban ann 1h spam", user_id="8", name="bob")
    refused = (await fake.wait_for(lambda p: p.route == sent))[0]
    assert "for moderators" in refused.payload["content"]
    await fake.send_message("!setlimit cooldown 60", user_id="9", name="mod", moderator=True)
    accepted = (await fake.wait_for(lambda p: p.route == sent, 2))[1]
    assert "cooldown is now 60" in accepted.payload["content"]
    (entry,) = await app.repo.audit_log("discord", GUILD_ID)
    assert (entry.action, entry.new_value, entry.actor) == ("set cooldown_s", "60", "mod (9)")


async def test_replies_ping_no_one_whatever_the_user_typed(discord_bot):
    fake, _ = discord_bot
    await fake.send_message("!melody @everyone <@&123> C4")
    (posted,) = await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages")
    assert "@everyone" in posted.payload["content"]  # quoted back in the error …
    assert posted.payload["allowed_mentions"]["parse"] == []  # … but pinging no one
    assert not posted.payload["allowed_mentions"].get("roles")


@pytest.mark.parametrize(
    ("close_code", "said"),
    [(4014, "the Message Content intent is off"), (4004, "Discord rejected DISCORD_TOKEN")],
)
async def test_a_gateway_closed_for_good_stops_the_bot_and_its_health(
    tmp_path, tiny_model_dir, monkeypatch, close_code, said
):
    from bot.health import is_alive
    from bot.platforms import FrontEndFailure
    from bot.runner import run_bots

    fake = FakeDiscord()
    await fake.start()
    fake.close_on_identify = close_code
    heartbeat = tmp_path / "heartbeat.json"
    settings = _settings_for(
        fake, monkeypatch, data_dir=tmp_path, model_dir=tiny_model_dir, heartbeat_file=heartbeat
    )
    try:
        with pytest.raises(FrontEndFailure, match=said):
            await asyncio.wait_for(run_bots(settings, ["discord"]), 60)
    finally:
        await fake.stop()
    assert not is_alive(heartbeat)[0]  # nothing says "alive: discord" any more


async def test_files_too_large_for_the_server_still_leave_the_user_the_midi(discord_bot):
    fake, _ = discord_bot
    fake.max_upload_bytes = 5_000  # a MIDI fits, the score picture does not
    await fake.send_message("!melody C4 D4 E4 seed=3 bars=4")
    (posted,) = await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages")
    assert list(_files_by_suffix(posted)) == ["mid"]
    (edit,) = await fake.wait_for(lambda p: p.route.startswith("PATCH "))  # 413s go unrecorded
    assert "would not take the score picture and audio" in edit.payload["content"]
    assert not edit.files


async def test_a_typing_indicator_refused_does_not_stop_the_melody(discord_bot, caplog):
    fake, app = discord_bot
    fake.refuse["/typing"] = 403
    with caplog.at_level("ERROR", logger="melodybot"):
        await fake.send_message("!melody C4 D4 E4 seed=5 bars=2")
        (posted,) = await fake.wait_for(
            lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages"
        )
    assert "mid" in _files_by_suffix(posted)
    assert (await app.repo.get_melody(1)).status == "done"
    assert not [r for r in caplog.records if "failed" in r.getMessage()]  # no incident


async def test_a_melody_discord_will_not_deliver_gives_its_quota_slot_back(discord_bot):
    fake, app = discord_bot
    fake.refuse[f"/channels/{CHANNEL_ID}/messages"] = 403
    await fake.send_message("!melody C4 D4 E4 seed=6 bars=2")
    record = await eventually(lambda: failed_melody(app.repo, 1))
    assert "not delivered" in record.error
    with sqlite3.connect(app.settings.database) as db:  # the slot is free again
        assert db.execute("SELECT counts FROM usage WHERE generation_id = 1").fetchone() == (0,)


async def test_a_melody_a_killed_process_left_is_finished_and_posted_in_its_channel(
    discord_front_end,
):
    from bot.takeover import take_over_interrupted
    from generator.request import parse_request

    fake, front_end = discord_front_end
    app = front_end.bot.app
    request = parse_request("C4 D4 E4 bars=2 seed=5")
    user = await app.repo.upsert_user("discord", "7", "ann")
    left = await app.repo.reserve_melody(  # as a process killed mid-melody left it
        user,
        "discord",
        GUILD_ID,
        "melody C4 D4 E4 bars=2 seed=5",
        request.to_dict() | {"canonical": request.describe()},
        app.engine.name,
        app.engine.version,
        5,
        owner="0a1b2c3d4e5f",  # no process holds its lock: gone
        reply_address=CHANNEL_ID,
    )
    assert await take_over_interrupted(app, "discord", front_end.send_to) == 1
    (posted,) = [p for p in fake.posted if p.route == f"POST /channels/{CHANNEL_ID}/messages"]
    assert posted.payload["content"].startswith("ann: I was restarted while composing this")
    stored = await app.repo.get_melody(left)
    assert stored.status == "done" and _files_by_suffix(posted)["mid"] == stored.midi
    assert stored.tokens == " ".join(app.engine.compose(request).tokens)  # the melody it began
    assert await take_over_interrupted(app, "discord", front_end.send_to) == 0  # only once


async def test_a_melody_finished_but_never_sent_is_sent_by_the_next_process(discord_front_end):
    """Killed between storing a melody and handing it to Discord: the next process sends the
    stored melody itself (the same MIDI, nothing composed again), and only once."""
    from bot.takeover import take_over_interrupted
    from generator.request import parse_request

    fake, front_end = discord_front_end
    app = front_end.bot.app
    request = parse_request("D4 E4 F#4 bars=2 seed=6")
    melody = app.engine.compose(request)
    user = await app.repo.upsert_user("discord", "7", "ann")
    left = await app.repo.reserve_melody(
        user,
        "discord",
        GUILD_ID,
        "melody D4 E4 F#4 bars=2 seed=6",
        request.to_dict() | {"canonical": request.describe()},
        app.engine.name,
        app.engine.version,
        6,
        owner="0a1b2c3d4e5f",
        reply_address=CHANNEL_ID,
    )
    midi = melody.to_midi()
    await app.repo.complete_melody(
        left, midi, melody.key_label, melody.steps, tokens=" ".join(melody.tokens), pickup=0
    )
    assert await take_over_interrupted(app, "discord", front_end.send_to) == 1
    (posted,) = [p for p in fake.posted if p.route == f"POST /channels/{CHANNEL_ID}/messages"]
    assert _files_by_suffix(posted)["mid"] == midi
    assert (await app.repo.get_melody(left)).delivered_at is not None
    assert await take_over_interrupted(app, "discord", front_end.send_to) == 0


async def test_a_delivered_melody_is_marked_so_no_one_sends_it_again(discord_bot):
    fake, app = discord_bot
    await fake.send_message("!melody C4 D4 E4 seed=2 bars=2")
    await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages")
    record = await eventually(lambda: delivered_melody(app.repo, 1))
    assert record.owner == app.scratch.name
    assert record.reply_address == CHANNEL_ID
    assert await app.repo.unsent_owners("discord") == set()


async def test_every_registered_command_is_a_slash_command_with_typed_options(discord_bot):
    from bot.registry import commands
    from generator.request import OPTIONS

    fake, _ = discord_bot
    registered = await eventually(
        lambda: {c["name"]: c for c in fake.registered if c.get("type", 1) == 1} or None
    )
    assert set(registered) == {spec.name for spec in commands()}
    melody = {o["name"]: o for o in registered["melody"]["options"]}
    assert melody["notes"]["required"] and melody["notes"]["type"] == 3
    assert (melody["temp"]["min_value"], melody["temp"]["max_value"]) == (
        OPTIONS["temp"].low,
        OPTIONS["temp"].high,
    )
    assert [c["value"] for c in melody["meter"]["choices"]] == list(OPTIONS["meter"].choices)
    assert melody["key"]["autocomplete"]
    again = {o["name"]: o for o in registered["again"]["options"]}
    assert again["id"]["type"] == 4 and again["id"]["autocomplete"]
    for spec in commands():  # moderators' commands are shown to those who manage the server
        permissions = registered[spec.name].get("default_member_permissions")
        assert (str(permissions) == str(1 << 5)) == spec.moderator


async def test_again_and_vary_buttons_compose_from_the_melody_under_them(discord_bot):
    fake, app = discord_bot
    await fake.send_message("!melody C4 D4 E4 temp=0.7 seed=3 bars=2")
    await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages")
    under = next(m for m in fake.messages if m["components"])
    await fake.click("run:again 1 seed=new", under)
    await fake.click("run:again 1 temp=0.9", under)
    legacy = "melody:vary:1:0.7"  # a button sent before buttons carried their command
    older = under | {"components": [{"type": 1, "components": [_button("Vary", legacy)]}]}
    await fake.click(legacy, older)
    answers = await fake.wait_for(lambda p: p.route.startswith(f"POST /webhooks/{APP_ID}/"), 3)
    assert all("mid" in _files_by_suffix(a) for a in answers)
    first, second, third = [await app.repo.get_melody(n) for n in (2, 3, 4)]
    assert first.request["canonical"].startswith("C4 D4 E4 temp=0.7 bars=2 seed=")
    assert first.rng_seed != 3  # "Again" is a new melody from the same opening
    assert (
        second.request["canonical"]
        == third.request["canonical"]
        == ("C4 D4 E4 temp=0.9 bars=2 seed=3")
    )


def _button(label: str, custom_id: str) -> dict:
    return {"type": 2, "style": 2, "label": label, "custom_id": custom_id}


async def test_melody_ids_are_suggested_from_the_users_own_melodies_in_this_server(discord_bot):
    fake, app = discord_bot
    await fake.send_message("!melody C4 D4 E4 seed=3 bars=2")
    await fake.send_message("!melody G4 A4 B4 seed=4 bars=2", user_id="8", name="bob")
    await eventually(lambda: delivered_melody(app.repo, 2))
    focused = [{"name": "id", "type": 4, "value": "", "focused": True}]
    await fake.send_autocomplete("show", focused)
    (answer,) = await fake.wait_for(lambda p: p.route.endswith("/callback"))
    assert answer.payload["type"] == 8  # autocomplete result
    (choice,) = answer.payload["data"]["choices"]
    assert choice["value"] == 1 and choice["name"].startswith("#1 · C4 D4 E4")


async def test_slash_ban_takes_a_user_option(discord_bot):
    fake, app = discord_bot
    troll = user("66", "troll")
    await fake.send_slash(
        "ban",
        [
            {"name": "user", "type": 6, "value": "66"},
            {"name": "duration", "type": 3, "value": "2h"},
            {"name": "reason", "type": 3, "value": "spamming"},
        ],
        moderator=True,
        resolved={"users": {"66": troll}},
    )
    (answer,) = await fake.wait_for(lambda p: p.route.endswith("/callback"))
    assert "troll can't use the bot here until" in answer.payload["data"]["content"]
    banned = await app.repo.find_user("discord", "66")
    ban = await app.repo.active_ban("discord", GUILD_ID, banned)
    assert ban is not None and ban.reason == "spamming"


async def test_prefix_replies_answer_the_asker_and_private_ones_go_away(discord_bot, monkeypatch):
    import bot.discord_bot

    monkeypatch.setattr(bot.discord_bot, "QUIET_REPLY_SECONDS", 0.5)
    fake, _ = discord_bot
    await fake.send_message("!limits")
    (answer,) = await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages")
    assert answer.payload["message_reference"]["message_id"]  # a reply to the asker's message
    assert answer.payload["allowed_mentions"] == {"parse": []}  # which pings no one
    (gone,) = await fake.wait_for(lambda p: p.route.startswith("DELETE "))
    assert gone.route.endswith(f"/messages/{fake.messages[0]['id']}")
    await fake.send_message("!melody C4 D4 E4 seed=2 bars=2")
    await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages", 2)
    await asyncio.sleep(1.0)
    assert len([p for p in fake.posted if p.route.startswith("DELETE ")]) == 1  # melodies stay


async def test_remix_from_the_context_menu_or_by_answering_a_melody(discord_bot):
    fake, app = discord_bot
    await fake.send_message("!melody C4 D4 E4 seed=3 bars=2")
    await fake.wait_for(lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages")
    melody_message = fake.messages[0]
    await fake.send_message_command("Remix", melody_message)
    (remixed,) = await fake.wait_for(lambda p: p.route.startswith(f"POST /webhooks/{APP_ID}/"))
    assert remixed.payload["content"].startswith("#2 · key C · 2 bars")
    await fake.send_message("!remix temp=1.5", answering=melody_message)
    await eventually(lambda: delivered_melody(app.repo, 3))
    answered = await app.repo.get_melody(3)
    assert answered.request["canonical"].startswith("C4 D4 E4 temp=1.5 bars=2 seed=")
    await fake.send_message_command("Remix", {**melody_message, "author": user("9", "someone")})
    refused = await fake.wait_for(lambda p: p.route.endswith("/callback"), 2)
    assert "Remix works on my melodies" in refused[-1].payload["data"]["content"]
    assert "Remix" in {c["name"] for c in fake.registered if c.get("type") == 3}


# a user's own install: direct messages and servers without the bot -----------------------


async def test_users_commands_can_be_installed_by_a_user_and_moderators_only_by_a_server(
    discord_bot,
):
    from bot.registry import commands

    fake, _ = discord_bot
    registered = await eventually(lambda: {c["name"]: c for c in fake.registered} or None)
    for spec in commands():
        places = (registered[spec.name]["integration_types"], registered[spec.name]["contexts"])
        assert places == (([0], [0]) if spec.moderator else ([0, 1], [0, 1, 2])), spec.name
    assert (registered["Remix"]["integration_types"], registered["Remix"]["contexts"]) == (
        [0, 1],
        [0, 1, 2],
    )


def _sent_to_a_channel(fake) -> list:
    return [p for p in fake.posted if p.route.startswith("POST /channels/")]


async def test_slash_melody_in_direct_messages_is_answered_through_the_interaction(discord_bot):
    """Only the user's own install reaches here: the bot answers through the interaction (it
    could not post in the channel), the melody counts in the user's own scope and has no
    channel to be posted in after a restart."""
    fake, app = discord_bot
    await fake.send_slash("melody", [{"name": "notes", "type": 3, "value": "A4 B4 C5"}], where="dm")
    (deferred,) = await fake.wait_for(lambda p: p.route.endswith("/callback"))
    assert deferred.payload["type"] == 5
    (follow_up,) = await fake.wait_for(lambda p: p.route.startswith(f"POST /webhooks/{APP_ID}/"))
    assert "mid" in _files_by_suffix(follow_up)
    (edit,) = await fake.wait_for(lambda p: p.route.startswith(f"PATCH /webhooks/{APP_ID}/"))
    assert "png" in _files_by_suffix(edit)  # the score added to that same follow-up
    stored = await eventually(lambda: delivered_melody(app.repo, 1))
    assert (stored.chat_id, stored.reply_address) == ("dm-7", None)
    assert _sent_to_a_channel(fake) == []


async def test_direct_messages_a_servers_install_reaches_keep_their_channel(discord_bot):
    """The bot may post in its direct messages with a user a server's install reaches (as it
    answers prefix commands there): that channel is where a melody goes after a restart."""
    fake, app = discord_bot
    await fake.send_slash(
        "melody", [{"name": "notes", "type": 3, "value": "E4 G4"}], where="server-dm"
    )
    await fake.wait_for(lambda p: p.route.startswith(f"PATCH /webhooks/{APP_ID}/"))
    stored = await eventually(lambda: delivered_melody(app.repo, 1))
    assert (stored.chat_id, stored.reply_address) == ("dm-7", DM_CHANNEL_ID)
    assert _sent_to_a_channel(fake) == []


async def test_a_users_install_elsewhere_counts_in_their_own_scope(discord_bot):
    """In a server without the bot and in a group message the user's melodies are theirs
    alike: suggested, remixed and refused by the same limits as in their direct messages."""
    fake, app = discord_bot
    await fake.send_slash(
        "melody",
        [
            {"name": "notes", "type": 3, "value": "C4 E4 G4"},
            {"name": "bars", "type": 4, "value": 2},
        ],
        where="other-server",
    )
    (first,) = await fake.wait_for(lambda p: p.route.startswith(f"POST /webhooks/{APP_ID}/"))
    assert first.payload["content"].startswith("#1 · ")
    melody_message = next(m for m in fake.messages if m["content"].startswith("#1 · "))
    assert "guild_id" in melody_message  # posted in that server, by the interaction
    focused = [{"name": "id", "type": 4, "value": "", "focused": True}]
    await fake.send_autocomplete("show", focused, where="group")
    suggested = await fake.wait_for(lambda p: p.payload.get("type") == 8)
    assert [c["value"] for c in suggested[0].payload["data"]["choices"]] == [1]
    await fake.send_message_command("Remix", melody_message, where="group")
    answers = await fake.wait_for(lambda p: p.route.startswith(f"POST /webhooks/{APP_ID}/"), 2)
    assert answers[1].payload["content"].startswith("#2 · ")
    remixed = await eventually(lambda: delivered_melody(app.repo, 2))
    await fake.wait_for(lambda p: p.route.startswith(f"PATCH /webhooks/{APP_ID}/"), 2)
    first_stored = await app.repo.get_melody(1)
    assert {first_stored.chat_id, remixed.chat_id} == {"dm-7"}
    assert first_stored.reply_address is None and remixed.reply_address is None
    assert _sent_to_a_channel(fake) == []


async def test_a_server_install_keeps_the_servers_scope_and_channel(discord_bot):
    fake, app = discord_bot
    await fake.send_slash("melody", [{"name": "notes", "type": 3, "value": "C4 D4 E4"}])
    await fake.wait_for(lambda p: p.route.startswith(f"PATCH /webhooks/{APP_ID}/"))
    stored = await eventually(lambda: delivered_melody(app.repo, 1))
    assert (stored.chat_id, stored.reply_address) == (GUILD_ID, CHANNEL_ID)


async def test_a_melody_left_where_only_a_users_install_reaches_gives_its_slot_back(
    discord_front_end,
):
    """Nowhere to post it after a restart: the next process gives its quota slot back."""
    from bot.takeover import take_over_interrupted
    from generator.request import parse_request

    fake, front_end = discord_front_end
    app = front_end.bot.app
    request = parse_request("C4 D4 E4 bars=2 seed=5")
    user = await app.repo.upsert_user("discord", "7", "ann")
    left = await app.repo.reserve_melody(  # as a killed process left a DM interaction's melody
        user,
        "discord",
        "dm-7",
        "melody C4 D4 E4 bars=2 seed=5",
        request.to_dict() | {"canonical": request.describe()},
        app.engine.name,
        app.engine.version,
        5,
        owner="0a1b2c3d4e5f",
        reply_address=None,
    )
    assert await take_over_interrupted(app, "discord", front_end.send_to) == 0
    assert (await app.repo.get_melody(left)).status == "failed"
    with sqlite3.connect(app.settings.database) as db:
        assert db.execute(
            "SELECT counts FROM usage WHERE generation_id = ?", (left,)
        ).fetchone() == (0,)
    assert _sent_to_a_channel(fake) == []
    assert await app.repo.unsent_owners("discord") == set()


# registering the commands only when they changed --------------------------------------------


def _registrations(fake) -> int:
    return fake.requests.count(f"PUT /applications/{APP_ID}/commands")


async def _start_again(front_end: DiscordFrontEnd) -> DiscordFrontEnd:
    again = DiscordFrontEnd(front_end.bot.app)
    await again.start()
    await asyncio.wait_for(again.bot.commands_checked.wait(), 30)
    return again


async def test_commands_are_registered_again_only_when_discord_has_others(
    discord_front_end, caplog
):
    fake, front_end = discord_front_end
    await asyncio.wait_for(front_end.bot.commands_checked.wait(), 30)
    assert _registrations(fake) == 1  # Discord had none
    await front_end.stop()
    with caplog.at_level("INFO", logger="melodybot.discord"):
        unchanged = await _start_again(front_end)
        await unchanged.stop()
        assert _registrations(fake) == 1
        assert "registered as they are" in caplog.text
        fake.registered = [  # changed by hand, or by another version of the bot
            c | {"description": "Something else"} if c["name"] == "help" else c
            for c in fake.registered
            if c["name"] != "stats"
        ]
        changed = await _start_again(front_end)
        await changed.stop()
    assert _registrations(fake) == 2
    assert "registering the slash commands (added: stats; changed: help)" in caplog.text
    assert fake.requests.count(f"GET /applications/{APP_ID}/commands") == 3


def test_command_changes_reads_commands_as_discord_lists_them():
    from bot.discord_bot import command_changes

    wanted = [
        {
            "name": "melody",
            "type": 1,
            "description": "Compose",
            "options": [{"type": 10, "name": "temp", "required": False, "min_value": 0.0}],
            "default_member_permissions": 32,
            "contexts": [0, 1, 2],
            "nsfw": False,
        },
        {"name": "Remix", "type": 3, "contexts": [0, 1]},
    ]
    registered = [
        {
            "id": "1",
            "application_id": "2",
            "version": "3",
            "name": "melody",
            "type": 1,
            "description": "Compose",
            "options": [{"type": 10, "name": "temp", "min_value": 0}],
            "default_member_permissions": "32",
            "contexts": [2, 1, 0],
            "dm_permission": True,
        },
        {"id": "4", "name": "Remix", "type": 3, "description": "", "contexts": [0, 1]},
    ]
    assert command_changes(wanted, registered) == []
    registered[0]["options"][0]["min_value"] = 0.5
    registered[1]["contexts"] = [0]
    assert command_changes(wanted, registered) == ["changed: melody, Remix"]
    assert command_changes(wanted[:1], registered) == ["changed: melody", "removed: Remix"]


async def test_a_process_runs_the_shards_it_is_given(tmp_path, tiny_model_dir, monkeypatch):
    """DISCORD_SHARD_COUNT=2, DISCORD_SHARD_IDS=1: this process identifies as shard 1 of 2 and
    answers there; registering the commands is left to the process that runs shard 0."""
    fake = FakeDiscord()
    await fake.start()
    monkeypatch.setenv("DISCORD_SHARD_COUNT", "2")
    monkeypatch.setenv("DISCORD_SHARD_IDS", "1")
    settings = _settings_for(
        fake, monkeypatch, data_dir=tmp_path, model_dir=tiny_model_dir, cooldown_s=0
    )
    assert (settings.discord_shard_count, settings.discord_shard_ids) == (2, [1])
    app = await open_app(settings)
    front_end = DiscordFrontEnd(app)
    await front_end.start()
    try:
        await asyncio.wait_for(front_end.bot.wait_until_ready(), 30)
        await asyncio.wait_for(front_end.bot.commands_checked.wait(), 30)
        assert [hello["shard"] for hello in fake.identifies] == [[1, 2]]
        await fake.send_message("!melody C4 D4 E4 seed=2 bars=2")
        (posted,) = await fake.wait_for(
            lambda p: p.route == f"POST /channels/{CHANNEL_ID}/messages"
        )
        assert _files_by_suffix(posted)["mid"][:4] == b"MThd"
        assert not [r for r in fake.requests if r.endswith(f"/applications/{APP_ID}/commands")]
    finally:
        await front_end.stop()
        await app.close()
        await fake.stop()


def test_shard_settings_that_cannot_work_are_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs DISCORD_SHARD_COUNT"):
        Settings(_env_file=None, discord_shard_ids="0")
    with pytest.raises(ValidationError, match=r"\[3\] are not shards of 2"):
        Settings(_env_file=None, discord_shard_count=2, discord_shard_ids="1,3")
    assert Settings(
        _env_file=None, discord_shard_count=4, discord_shard_ids="0, 2"
    ).discord_shard_ids == [0, 2]
