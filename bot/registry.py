"""Every chat command, registered once: its name, usage, help, who may use it and its typed
options, on the handler that answers it.

The prefix grammar (``!melody …``), ``!help``, Discord's slash commands and Telegram's command
menu are all built from this registry, so a new command is one decorated function in
``bot/handlers/`` and every platform offers it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.context import Context
    from bot.replies import Reply

OptionKind = Literal["text", "int", "float", "user", "choice"]
# How an option is written back into the chat grammar: a word in its place, ``name=value``, or
# the free text that ends the line.
OptionStyle = Literal["word", "named", "rest"]


@dataclass(frozen=True)
class CommandOption:
    """One typed option of a command, as a platform with typed commands offers it."""

    name: str
    description: str
    kind: OptionKind = "text"
    style: OptionStyle = "word"
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    # What to suggest while the user types: keys, the user's own melodies (newest first), or
    # the bot's commands.
    suggest: Literal["keys", "melodies", "commands"] | None = None


Handler = Callable[["Context"], Awaitable["Reply | None"]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    example: str
    handler: Handler
    options: tuple[CommandOption, ...] = ()
    moderator: bool = False
    # Composing commands get the work-started hook (typing…, a deferred interaction).
    composes: bool = False
    # Explained at length by ``!help NAME`` (the notes and options of the grammar).
    grammar_help: bool = False

    def to_text(self, values: dict[str, object]) -> str:
        """The chat line that typed options stand for (``/melody notes:C4 temp:0.9`` →
        ``melody C4 temp=0.9``), so they reach the core through the same grammar as text."""
        words = [self.name]
        for option in self.options:
            value = values.get(option.name)
            if value is None or value == "":
                continue
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            words.append(f"{option.name}={shown}" if option.style == "named" else shown)
        return " ".join(words)


_REGISTRY: dict[str, CommandSpec] = {}
ALIASES = {"start": "help", "forget": "forgetme", "commands": "help", "compose": "melody"}


def command(
    name: str,
    *,
    usage: str,
    summary: str,
    example: str,
    options: Iterable[CommandOption] = (),
    moderator: bool = False,
    composes: bool = False,
    grammar_help: bool = False,
) -> Callable[[Handler], Handler]:
    """Register the decorated handler as the command ``name``."""

    def register(handler: Handler) -> Handler:
        if name in _REGISTRY:
            raise ValueError(f"the command {name!r} is registered twice")
        _REGISTRY[name] = CommandSpec(
            name,
            usage,
            summary,
            example,
            handler,
            tuple(options),
            moderator,
            composes,
            grammar_help,
        )
        return handler

    return register


def commands() -> tuple[CommandSpec, ...]:
    """Every command, in the order help lists them (users' first, then moderators')."""
    _load_handlers()
    specs = tuple(_REGISTRY.values())
    return tuple(s for s in specs if not s.moderator) + tuple(s for s in specs if s.moderator)


def find(name: str) -> CommandSpec | None:
    """The command a word names (an alias included), or None."""
    _load_handlers()
    return _REGISTRY.get(ALIASES.get(name, name))


def _load_handlers() -> None:
    """The handlers register themselves when imported; import them all on first use."""
    import bot.handlers  # noqa: F401
