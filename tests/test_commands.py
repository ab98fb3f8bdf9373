"""Every registered command's happy path and its refusal, through the core as a front-end calls
it: one bot for the whole module (the tiny model, a real database), each case in its own chat.

A command added to the registry without a case here fails :func:`test_every_command_has_cases`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import pytest_asyncio

from bot.app import open_app
from bot.config import Settings
from bot.incoming import Incoming
from bot.registry import commands


@dataclass(frozen=True)
class Case:
    line: str
    answer: str  # a part of the reply's text
    moderator: bool = False
    # said first in the same chat as a moderator, by ann unless a line starts with "bob: ";
    # "{id}" in ``line`` is the last melody they made
    before: tuple[str, ...] = ()
    refusal: bool = False
    by: str = "ann"  # who says ``line`` (a user of their own where the history matters)


HAPPY = {
    "melody": Case("!melody C4 D4 E4 bars=2 seed=1", "· key C · 2 bars · temp 1 · seed 1"),
    "again": Case(
        "!again {id} temp=1.5", "temp 1.5 · seed 1", before=("!melody C4 E4 bars=2 seed=1",)
    ),
    "remix": Case(
        "!remix {id} bars=3", "· 3 bars · temp 1 · seed", before=("!melody C4 E4 bars=2",)
    ),
    "show": Case("!show {id}", " · key C", before=("!melody C4 E4 bars=2 seed=1",)),
    "history": Case(
        "!history", "Your only melody:", before=("cy: !melody C4 E4 bars=2 seed=1",), by="cy"
    ),
    "forgetme": Case(
        "!forgetme confirm",
        "deleted 1 melody",
        before=("dee: !melody C4 E4 bars=2 seed=1",),
        by="dee",
    ),
    "limits": Case("!limits", "per person per day"),
    "help": Case("!help melody", "Example: !melody"),
    "setlimit": Case("!setlimit daily 5", "daily is now 5 in this chat", moderator=True),
    "ban": Case(
        "!ban bob 2h",
        "Bob can't use the bot here until",
        True,
        ("bob: !melody C4 bars=2",),
    ),
    "unban": Case(
        "!unban bob",
        "Bob may use the bot here again",
        True,
        ("bob: !melody C4 bars=2", "!ban bob"),
    ),
    "enable": Case("!enable", "The bot is on in this chat.", moderator=True),
    "disable": Case("!disable", "The bot is off in this chat.", moderator=True),
    "gallery": Case("!gallery on", "This chat's melodies are listed at /g/", moderator=True),
    "stats": Case("!stats", "Melodies in the last 7 days:", True, ("!melody C4 E4 bars=2",)),
    "audit": Case("!audit", "set daily_quota", True, ("!setlimit daily 3",)),
}
REFUSED = {
    "melody": Case("!melody X4", "I don't know the note 'X4'", refusal=True),
    "again": Case("!again 99", "I can't find melody #99 in this chat", refusal=True),
    "remix": Case("!remix", "Answer one of my melodies with remix", refusal=True),
    "show": Case("!show twelve", "Give the melody's number.", refusal=True),
    "history": Case("!history 99", "Give a number from 1 to 20.", refusal=True),
    "forgetme": Case("!forgetme", "Send !forgetme confirm to go ahead"),  # asks before it deletes
    "limits": Case("!limits now", "In this chat:"),  # takes nothing, refuses nothing
    "help": Case("!help dance", "There is no command !dance.", refusal=True),
    "setlimit": Case("!setlimit daily 5", "is for moderators of this chat", refusal=True),
    "ban": Case("!ban bob", "is for moderators of this chat", refusal=True),
    "unban": Case("!unban bob", "is for moderators of this chat", refusal=True),
    "enable": Case("!enable", "is for moderators of this chat", refusal=True),
    "disable": Case("!disable", "is for moderators of this chat", refusal=True),
    "gallery": Case("!gallery on", "is for moderators of this chat", refusal=True),
    "stats": Case("!stats 999", "Give a number from 1 to 365.", moderator=True, refusal=True),
    "audit": Case("!audit", "is for moderators of this chat", refusal=True),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory, tiny_model_dir):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("bot"),
        model_dir=tiny_model_dir,
        audio=False,
        cooldown_s=0,
        workers=1,
    )
    application = await open_app(settings)
    yield application
    await application.close()


async def _say(app, line: str, chat: str, moderator: bool, user: str = "ann"):
    async def moderates() -> bool:
        return moderator

    message = Incoming("test", chat, user, user.title(), line)
    reply = await app.core.handle(message, is_moderator=moderates)
    assert reply is not None, line
    if reply.follow_ups is not None:  # the picture is not what these tests are about
        reply.follow_ups.cancel()
    return reply


@pytest.mark.asyncio(loop_scope="module")
async def test_remix_answering_a_melody_takes_its_opening_with_a_new_seed(app):
    made = await _say(app, "!melody G4 A4 B4 bars=2 seed=9", "chat-remix", moderator=False)
    answer = Incoming(
        "test", "chat-remix", "bob", "Bob", "!remix temp=1.2", answers_melody=made.melody_id
    )
    reply = await app.core.handle(answer)
    reply.follow_ups.cancel()
    record = await app.repo.get_melody(reply.melody_id)
    assert record.request["canonical"].startswith("G4 A4 B4 temp=1.2 bars=2 seed=")
    assert record.rng_seed != 9


@pytest.mark.asyncio(loop_scope="module")
async def test_a_limit_goes_back_to_the_default(app):
    await _say(app, "!setlimit maxbars 4", "chat-default", moderator=True)
    back = await _say(app, "!setlimit maxbars default", "chat-default", moderator=True)
    assert back.text == "maxbars is back to the default, 32, in this chat (was 4)."
    limits = await _say(app, "!limits", "chat-default", moderator=False)
    assert "at most 32 bars" in limits.text


@pytest.mark.asyncio(loop_scope="module")
async def test_every_command_has_cases():
    assert set(HAPPY) == set(REFUSED) == {spec.name for spec in commands()}


@pytest.mark.parametrize(
    ("name", "case"),
    [(f"{n}-happy", c) for n, c in HAPPY.items()]
    + [(f"{n}-refused", c) for n, c in REFUSED.items()],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_command(app, name: str, case: Case):
    chat = f"chat-{name}"
    made = None
    for said in case.before:
        user, _, line = said.rpartition(": ")
        earlier = await _say(app, line, chat, moderator=True, user=user or "ann")
        made = earlier.melody_id or made
    reply = await _say(app, case.line.format(id=made), chat, case.moderator, case.by)
    assert case.answer in reply.text
    assert reply.refusal == case.refusal
