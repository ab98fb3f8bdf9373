"""The chat grammar every front-end shares: ``!melody C4 D4 E4 temp=0.7``, ``/history 5`` …

Parsing only finds which command was meant and hands over its argument text; what the argument
means is the core's business. A message not addressed to the bot parses to ``None``; a message
that is addressed to it but wrong raises :class:`CommandError` with a message and a working example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    example: str
    moderator: bool = False


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "melody",
        "melody NOTES [options]",
        "compose a melody that continues your notes",
        "melody C4 D4 E4 temp=0.7 bars=8",
    ),
    CommandSpec(
        "again",
        "again ID [options]",
        "compose melody ID again with changed options (same notes)",
        "again 12 temp=1.2",
    ),
    CommandSpec("show", "show ID", "send a stored melody again", "show 12"),
    CommandSpec("history", "history [N]", "your last N melodies (default 5)", "history 10"),
    CommandSpec("forgetme", "forgetme [confirm]", "delete your melody history", "forgetme"),
    CommandSpec("limits", "limits", "the limits that apply in this chat", "limits"),
    CommandSpec("help", "help [command]", "how to use the bot", "help melody"),
    CommandSpec(
        "setlimit",
        "setlimit daily|cooldown|maxbars|maxnotes VALUE",
        "change a limit for this chat",
        "setlimit daily 20",
        moderator=True,
    ),
    CommandSpec(
        "ban",
        "ban USER [duration] [reason]",
        "stop a user from using the bot here (duration like 30m, 2h, 7d)",
        "ban @someone 1d spamming",
        moderator=True,
    ),
    CommandSpec("unban", "unban USER", "lift a ban", "unban @someone", moderator=True),
    CommandSpec("enable", "enable", "turn the bot on in this chat", "enable", moderator=True),
    CommandSpec("disable", "disable", "turn the bot off in this chat", "disable", moderator=True),
    CommandSpec(
        "stats", "stats [days]", "melodies per day and per user", "stats 7", moderator=True
    ),
    CommandSpec("audit", "audit [N]", "the last N moderator actions", "audit 10", moderator=True),
)
BY_NAME = {spec.name: spec for spec in SPECS}
ALIASES = {"start": "help", "forget": "forgetme", "commands": "help", "compose": "melody"}
MAX_MESSAGE_CHARS = 2000


class CommandError(ValueError):
    """A message meant for the bot that it cannot act on; ``str()`` is the reply to send."""

    def __init__(self, problem: str, example: str | None = None):
        self.problem = problem
        self.example = example
        super().__init__(problem if example is None else f"{problem} Try: {example}")


@dataclass(frozen=True)
class Command:
    spec: CommandSpec
    argument: str

    @property
    def name(self) -> str:
        return self.spec.name


def parse_command(
    text: str, prefixes: tuple[str, ...] = ("!",), bot_username: str | None = None
) -> Command | None:
    """The command a message asks for, ``None`` if it is not for the bot."""
    stripped = text.strip()
    prefix = next((p for p in prefixes if p and stripped.startswith(p)), None)
    if prefix is None:
        return None
    body = stripped[len(prefix) :]
    # Any whitespace ends the command word: a tab, a newline or a no-break space as well.
    word, _, argument = re.sub(r"\s", " ", body, count=1).partition(" ")
    if not word or word.startswith(prefix[0]):  # "!" alone or "!!!" is chat, not a command
        return None
    name, _, addressee = word.partition("@")  # Telegram: /melody@SomeBot
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None  # a command for another bot in the same group
    name = ALIASES.get(name.lower(), name.lower())
    spec = BY_NAME.get(name)
    if spec is None:
        shown = word if len(word) <= 30 else word[:30] + "…"
        raise CommandError(
            f"I don't know the command {prefix}{shown}. Commands: "
            + ", ".join(f"{prefix}{s.name}" for s in SPECS if not s.moderator)
            + ".",
            f"{prefix}help",
        )
    if len(argument) > MAX_MESSAGE_CHARS:
        raise CommandError("That message is too long for me.", f"{prefix}{spec.example}")
    return Command(spec, argument.strip())
