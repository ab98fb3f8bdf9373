"""What the bot says about itself: ``!help`` and ``!limits``."""

from __future__ import annotations

from bot.commands import CommandError
from bot.context import Context
from bot.registry import CommandOption, command, commands
from bot.replies import Reply
from bot.wording import melodies, plural
from generator.request import EXAMPLE, OPTION_HELP

NOTES_HELP = (
    "Notes: C4 F#4 Bb3 60 r, with a length in quarter notes: D4:2 E4:0.5; without an octave, "
    "octave 4 (c d e); H4 is B4, and B4 stays B, not B flat"
)


@command(
    "limits",
    usage="limits",
    summary="the limits that apply in this chat",
    example="limits",
)
async def limits(ctx: Context) -> Reply:
    chat = await ctx.repo.effective_limits(*ctx.scope)
    state = "on" if chat.enabled else "off"
    return Reply(
        f"In this chat: {melodies(chat.daily_quota)} per person per day, "
        f"{chat.cooldown_s} s between melodies, at most {plural(chat.max_bars, 'bar')} "
        f"and {plural(chat.max_seed_notes, 'starting note')}. The bot is {state} here.",
        private=True,
    )


@command(
    "help",
    usage="help [command]",
    summary="how to use the bot",
    example="help melody",
    options=(CommandOption("command", "a command to explain", suggest="commands"),),
)
async def help_(ctx: Context) -> Reply:
    p = ctx.prefix
    topic = ctx.argument.strip().lstrip(p + "/").lower()
    spec = next((s for s in commands() if s.name == topic), None)
    if topic and spec is None:
        raise CommandError(f"There is no command {p}{topic}.", f"{p}help")
    if spec is not None:
        text = (
            f"{p}{spec.usage}\n{spec.summary[0].upper()}{spec.summary[1:]}.\n"
            f"Example: {p}{spec.example}"
        )
        if spec.grammar_help:
            options = "; ".join(f"{name}= {meaning}" for name, meaning in OPTION_HELP.items())
            text += f"\n{NOTES_HELP}\nOptions: {options}"
        return Reply(text, private=True)
    everyone = [s for s in commands() if not s.moderator]
    lines = [f"I compose folk melodies that continue your notes. Try: {p}melody {EXAMPLE}"]
    lines += [f"{p}{s.usage} — {s.summary}" for s in everyone]
    lines.append("Moderators: " + ", ".join(f"{p}{s.name}" for s in commands() if s.moderator))
    lines.append(f"More: {p}help melody")
    return Reply("\n".join(lines), private=True)
