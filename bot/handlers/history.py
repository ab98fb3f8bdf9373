"""A user's own melodies: ``!history`` and ``!forgetme``."""

from __future__ import annotations

from bot.context import Context
from bot.registry import CommandOption, command
from bot.replies import Reply
from bot.wording import melodies, utc
from generator.request import EXAMPLE

MAX_HISTORY = 20


@command(
    "history",
    usage="history [N]",
    summary="your last N melodies (default 5)",
    example="history 10",
    options=(CommandOption("count", "how many", "int", low=1, high=MAX_HISTORY),),
)
async def history(ctx: Context) -> Reply:
    count = ctx.count(default=5, high=MAX_HISTORY, example="history 5")
    user = await ctx.user()
    items = await ctx.repo.history(user.id, limit=count)
    if not items:
        return Reply(
            f"You have no melodies yet. Try {ctx.example(f'melody {EXAMPLE}')}", private=True
        )
    total = await ctx.repo.count_history(user.id)
    lines = ["Your only melody:" if total == 1 else f"Your last {len(items)} of {total} melodies:"]
    lines += [
        f"#{m.id} · {utc(m.created_at)} · {m.request['canonical']} · key {m.melody_key}"
        for m in items
    ]
    return Reply("\n".join(lines), private=True)


@command(
    "forgetme",
    usage="forgetme [confirm]",
    summary="delete your melody history",
    example="forgetme",
    options=(
        CommandOption("confirm", "confirm to delete for good", "choice", choices=("confirm",)),
    ),
)
async def forgetme(ctx: Context) -> Reply:
    user = await ctx.user()
    if ctx.argument.strip().lower() != "confirm":
        total = await ctx.repo.count_history(user.id)
        what = "your only melody" if total == 1 else f"all {total} of your melodies"
        return Reply(
            f"This deletes {what} for good. Send {ctx.example('forgetme confirm')} to go ahead.",
            private=True,
        )
    deleted = await ctx.repo.forget_user(user.id)
    return Reply(f"Done: I deleted {melodies(deleted)} of yours.", private=True)
