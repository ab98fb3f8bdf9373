"""Moderators' commands: limits, the on/off switch, bans, and what happened in the chat. The
core lets only moderators reach these handlers; each change lands in the audit log."""

from __future__ import annotations

import re

from bot.commands import CommandError
from bot.context import Context
from bot.limits import CHANGEABLE
from bot.registry import CommandOption, command
from bot.replies import Reply
from bot.wording import utc
from storage import User

_DURATION = re.compile(r"^(\d{1,5})([smhdw])$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
USER = CommandOption("user", "who", "user", required=True)
GALLERY_STATES = ("on", "names", "off")


@command(
    "setlimit",
    usage="setlimit daily|cooldown|maxbars|maxnotes VALUE|default",
    summary="change a limit for this chat, or put it back to the default",
    example="setlimit daily 20",
    options=(
        CommandOption("limit", "which limit", "choice", required=True, choices=tuple(CHANGEABLE)),
        CommandOption("value", "its new value, or default", required=True),
    ),
    moderator=True,
)
async def setlimit(ctx: Context) -> Reply:
    example = ctx.example("setlimit daily 20")
    parts = ctx.argument.split()
    if len(parts) != 2 or parts[0].lower() not in CHANGEABLE:
        raise CommandError(
            "Say which limit and its new value: daily, cooldown, maxbars or maxnotes.", example
        )
    limit = CHANGEABLE[parts[0].lower()]
    if parts[1].lower() == "default":
        old = await ctx.repo.unset_limit(*ctx.scope, limit.field, ctx.actor)
        now = getattr(await ctx.repo.effective_limits(*ctx.scope), limit.field)
        before = "the default already" if old is None else str(old)
        return Reply(f"{limit.word} is back to the default, {now}, in this chat (was {before}).")
    if not parts[1].isdecimal() or not limit.low <= int(parts[1]) <= limit.high:
        raise CommandError(
            f"{parts[0]} must be a whole number from {limit.low} to {limit.high}, or default.",
            example,
        )
    value = int(parts[1])
    old = await ctx.repo.set_limit(*ctx.scope, limit.field, value, ctx.actor)
    before = "the default" if old is None else str(old)
    return Reply(f"{limit.word} is now {value} in this chat (was {before}).")


@command(
    "ban",
    usage="ban USER [duration] [reason]",
    summary="stop a user from using the bot here (duration like 30m, 2h, 7d)",
    example="ban @someone 1d spamming",
    options=(
        USER,
        CommandOption("duration", "how long, like 30m, 2h or 7d (default: for good)"),
        CommandOption("reason", "why, for the audit log", style="rest"),
    ),
    moderator=True,
)
async def ban(ctx: Context) -> Reply:
    target, rest = await _target_user(ctx, "ban")
    duration_s = None
    words = rest.split(maxsplit=1)
    if words and (match := _DURATION.match(words[0].lower())):
        duration_s = int(match[1]) * _DURATION_SECONDS[match[2]]
        rest = words[1] if len(words) > 1 else ""
    if target.platform_user_id == ctx.message.user_id:
        raise CommandError("You can't ban yourself.", ctx.example("ban @someone"))
    banned = await ctx.repo.ban(*ctx.scope, target, ctx.actor, rest.strip(), duration_s)
    until = "for good" if banned.expires_at is None else f"until {utc(banned.expires_at)}"
    return Reply(f"{target.display_name} can't use the bot here {until}.")


@command(
    "unban",
    usage="unban USER",
    summary="lift a ban",
    example="unban @someone",
    options=(USER,),
    moderator=True,
)
async def unban(ctx: Context) -> Reply:
    target, _ = await _target_user(ctx, "unban")
    if await ctx.repo.unban(*ctx.scope, target, ctx.actor):
        return Reply(f"{target.display_name} may use the bot here again.")
    return Reply(f"{target.display_name} wasn't banned here.", private=True)


@command(
    "enable",
    usage="enable",
    summary="turn the bot on in this chat",
    example="enable",
    moderator=True,
)
async def enable(ctx: Context) -> Reply:
    await ctx.repo.set_enabled(*ctx.scope, True, ctx.actor)
    return Reply("The bot is on in this chat.")


@command(
    "disable",
    usage="disable",
    summary="turn the bot off in this chat",
    example="disable",
    moderator=True,
)
async def disable(ctx: Context) -> Reply:
    await ctx.repo.set_enabled(*ctx.scope, False, ctx.actor)
    return Reply(f"The bot is off in this chat. {ctx.example('enable')} turns it on.")


@command(
    "gallery",
    usage="gallery on|names|off",
    summary="list this chat's melodies on a web page (names: with who composed them)",
    example="gallery on",
    options=(
        CommandOption(
            "state", "on, names (on, with names) or off", "choice", True, choices=GALLERY_STATES
        ),
    ),
    moderator=True,
)
async def gallery(ctx: Context) -> Reply:
    """Each melody has its page, found only through its link; a gallery lists the chat's
    recent ones at one address, which is why it is the chat's choice, and names its
    composers only if the chat chooses that too."""
    state = ctx.argument.strip().lower()
    if state not in GALLERY_STATES:
        raise CommandError("Say on, names or off.", ctx.example("gallery on"))
    shown = await ctx.repo.set_gallery(
        *ctx.scope, state != "off", ctx.actor, show_names=state == "names"
    )
    if not shown.enabled:
        return Reply("The gallery of this chat is off; its page says the melodies are gone.")
    address = f"{(ctx.settings.public_url or '').rstrip('/')}/g/{shown.page_id}"
    names = ", with who composed each" if shown.show_names else " (no names)"
    return Reply(f"This chat's melodies are listed at {address}{names}.")


@command(
    "stats",
    usage="stats [days]",
    summary="melodies per day and per user",
    example="stats 7",
    options=(CommandOption("days", "how many days back", "int", low=1, high=365),),
    moderator=True,
)
async def stats(ctx: Context) -> Reply:
    days = ctx.count(default=7, high=365, example="stats 7")
    found = await ctx.repo.stats(*ctx.scope, days)
    if not found["per_day"]:
        return Reply(f"No melodies in this chat in the last {days} days.", private=True)
    lines = [f"Melodies in the last {days} days:"]
    lines += [f"{day}: {n}" for day, n in found["per_day"]]
    lines.append("Most active: " + ", ".join(f"{name} ({n})" for name, n in found["per_user"][:10]))
    return Reply("\n".join(lines), private=True)


@command(
    "audit",
    usage="audit [N]",
    summary="the last N moderator actions",
    example="audit 10",
    options=(CommandOption("count", "how many", "int", low=1, high=50),),
    moderator=True,
)
async def audit(ctx: Context) -> Reply:
    count = ctx.count(default=10, high=50, example="audit 10")
    entries = await ctx.repo.audit_log(*ctx.scope, count)
    if not entries:
        return Reply("No moderator actions in this chat yet.", private=True)
    lines = [f"Last {len(entries)} moderator actions:"]
    for e in entries:
        change = f"{e.old_value or '—'} → {e.new_value or '—'}"
        target = f" {e.target}" if e.target else ""
        lines.append(f"{utc(e.created_at)} · {e.actor}: {e.action}{target} ({change})")
    return Reply("\n".join(lines), private=True)


async def _target_user(ctx: Context, command_name: str) -> tuple[User, str]:
    """Whom a ban is about (mentioned, answered, or named) and the rest of the line."""
    message = ctx.message
    example = ctx.example(f"{command_name} @someone")
    first, _, rest = ctx.argument.strip().partition(" ")
    if message.mentions:
        user_id, name = message.mentions[0]
        return await ctx.repo.upsert_user(message.platform, user_id, name), rest
    if not first and message.reply_to:
        user_id, name = message.reply_to
        return await ctx.repo.upsert_user(message.platform, user_id, name), rest
    if not first:
        raise CommandError(
            "Say who: mention them, answer one of their messages, or give their name or id.",
            example,
        )
    found = await ctx.repo.find_user(message.platform, first)
    if found is None:
        raise CommandError(
            f"I don't know anyone called {first[:40]} here; they need to "
            "have used the bot once, or mention them.",
            example,
        )
    return found, rest
