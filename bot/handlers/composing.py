"""Commands that make or send a melody: ``!melody``, ``!again``, ``!show``."""

from __future__ import annotations

from bot.commands import CommandError
from bot.context import ComposeContext, Context
from bot.refusals import refusal_reply
from bot.registry import CommandOption, command
from bot.replies import Reply
from generator.request import EXAMPLE, NEW_SEED, OPTIONS, parse_request
from storage import MelodyRecord, Refusal

TYPED_OPTIONS = ("temp", "bars", "key", "bpm", "meter", "pickup", "seed", "inst")  # on Discord
MELODY_ID = CommandOption(
    "id", "the melody's number (#12)", "int", required=True, low=1, suggest="melodies"
)


def _request_option(name: str) -> CommandOption:
    option = OPTIONS[name]
    kind = "choice" if option.choices else {int: "int", float: "float"}.get(option.kind, "text")
    return CommandOption(
        name,
        option.help,
        kind,  # type: ignore[arg-type]
        style="named",
        low=option.low,
        high=option.high,
        choices=option.choices,
        suggest="keys" if name == "key" else None,
    )


@command(
    "melody",
    usage="melody NOTES [options]",
    summary="compose a melody that continues your notes",
    example="melody C4 D4 E4 temp=0.7 bars=8",
    options=(
        CommandOption(
            "notes",
            "your opening, e.g. C4 D4 E4:2 G4 (letter, # or b, octave; :length in beats)",
            required=True,
        ),
        *(_request_option(name) for name in TYPED_OPTIONS),
    ),
    composes=True,
    grammar_help=True,
)
async def melody(ctx: ComposeContext) -> Reply | None:
    if not ctx.argument:
        raise CommandError("Give me a few notes to start from.", ctx.example(f"melody {EXAMPLE}"))
    request = parse_request(ctx.argument, default_temperature=ctx.settings.default_temperature)
    return await ctx.services.composer.compose(ctx, ctx.argument, request)


@command(
    "again",
    usage="again ID [options]",
    summary="compose melody ID again with changed options (same notes)",
    example="again 12 temp=1.2",
    options=(
        MELODY_ID,
        CommandOption("options", "what to change, e.g. temp=1.2 bars=16 seed=new", style="rest"),
    ),
    composes=True,
    grammar_help=True,
)
async def again(ctx: ComposeContext) -> Reply | None:
    number, _, options = ctx.argument.partition(" ")
    original = await melody_here(ctx, number, "again")
    request = parse_request(original.request["canonical"]).with_option_text(options)
    return await ctx.services.composer.compose(ctx, f"again {ctx.argument}", request)


@command(
    "remix",
    usage="remix [ID] [options]",
    summary="a new melody from the opening of melody ID, or of the melody you answer",
    example="remix 12 temp=1.2",
    options=(
        CommandOption("id", "the melody's number (#12)", "int", low=1, suggest="melodies"),
        CommandOption("options", "what to change, e.g. temp=1.2 bars=16", style="rest"),
    ),
    composes=True,
    grammar_help=True,
)
async def remix(ctx: ComposeContext) -> Reply | None:
    """``!again ID seed=new``, for a melody named by its number or by answering its message."""
    first, _, rest = ctx.argument.partition(" ")
    if first.lstrip("#").isdecimal():
        number, options = first, rest
    elif ctx.message.answers_melody is not None:
        number, options = str(ctx.message.answers_melody), ctx.argument
    else:
        raise CommandError(
            "Answer one of my melodies with remix, or give its number.", ctx.example("remix 12")
        )
    original = await melody_here(ctx, number, "remix")
    if "seed=" not in options.lower():
        options = f"seed={NEW_SEED} {options}"
    request = parse_request(original.request["canonical"]).with_option_text(options)
    return await ctx.services.composer.compose(ctx, f"remix {ctx.argument}".strip(), request)


@command(
    "show",
    usage="show ID [xml]",
    summary="send a stored melody again (with xml: as MusicXML too)",
    example="show 12",
    options=(
        MELODY_ID,
        CommandOption("xml", "also send it as MusicXML", "choice", choices=("xml",)),
    ),
    composes=True,
)
async def show(ctx: ComposeContext) -> Reply:
    """Send a stored melody again, only for users the chat lets use the bot, no faster than its
    cooldown (it counts towards that, not towards the daily quota: nothing is composed)."""
    number, _, rest = ctx.argument.strip().partition(" ")
    if rest.strip().lower() not in ("", "xml", "xml=yes"):
        raise CommandError(
            "Give the melody's number, and xml for MusicXML.", ctx.example("show 12 xml")
        )
    record = await melody_here(ctx, number, "show")
    try:
        await ctx.repo.admit_resend(await ctx.user(), *ctx.scope)
    except Refusal as refusal:
        return refusal_reply(refusal, ctx.prefix)
    return await ctx.services.composer.resend(ctx, record, musicxml=bool(rest.strip()))


async def melody_here(ctx: Context, number: str, command_name: str) -> MelodyRecord:
    """The finished melody ``number`` (``12`` or ``#12``) of this chat, or the error to show."""
    digits = number.lstrip("#")
    if not digits.isdecimal():
        raise CommandError("Give the melody's number.", ctx.example(f"{command_name} 12"))
    wanted = int(digits)
    # No melody has a number past SQLite's largest integer; asking for one is simply unknown.
    record = await ctx.repo.get_melody(wanted) if wanted < 2**63 else None
    if record is None or record.status != "done" or (record.platform, record.chat_id) != ctx.scope:
        raise CommandError(
            f"I can't find melody #{digits[:20]} in this chat.", ctx.example("history")
        )
    return record
