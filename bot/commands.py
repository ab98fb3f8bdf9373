"""The chat grammar every front-end shares: ``!melody C4 D4 E4 temp=0.7``, ``/history 5`` …

Parsing only finds which registered command was meant (:mod:`bot.registry`) and hands over its
argument text; what the argument means is its handler's business. A message not addressed to
the bot parses to ``None``; a message that is addressed to it but wrong raises
:class:`CommandError` with a message and a working example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.registry import CommandSpec, commands, find

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
    spec = find(name.lower())
    if spec is None:
        shown = word if len(word) <= 30 else word[:30] + "…"
        raise CommandError(
            f"I don't know the command {prefix}{shown}. Commands: "
            + ", ".join(f"{prefix}{s.name}" for s in commands() if not s.moderator)
            + ".",
            f"{prefix}help",
        )
    if len(argument) > MAX_MESSAGE_CHARS:
        raise CommandError("That message is too long for me.", f"{prefix}{spec.example}")
    return Command(spec, argument.strip())
