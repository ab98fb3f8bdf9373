"""The replies to the refusals storage raises (a ban, a full quota, a melody too long …), and
to the bot itself being unable to take work."""

from __future__ import annotations

from bot.replies import Reply
from bot.wording import melodies, utc
from generator.request import EXAMPLE
from storage import (
    Banned,
    ChatDisabled,
    CooldownActive,
    QuotaExceeded,
    Refusal,
    TooLong,
    TooManySeedNotes,
)

DISK_FULL = Reply(
    "I can't save melodies right now (the server has run out of disk space). "
    "Please try again later.",
    private=True,
    refusal=True,
)
RESTARTING = Reply(
    "I'm restarting for a moment and can't take this now. Please ask again in a minute.",
    private=True,
)


def refusal_reply(refusal: Refusal, prefix: str) -> Reply:
    return Reply(_why(refusal, prefix), private=True, refusal=True)


def _why(refusal: Refusal, prefix: str) -> str:
    if isinstance(refusal, Banned):
        until = refusal.ban.expires_at
        when = "" if until is None else f" until {utc(until)}"
        reason = f" ({refusal.ban.reason})" if refusal.ban.reason else ""
        return f"You can't use the bot here{when}{reason}."
    if isinstance(refusal, ChatDisabled):
        return "The bot is switched off in this chat."
    if isinstance(refusal, TooLong):
        return (
            f"Melodies here are at most {refusal.max_bars} bars long. "
            f"Try: {prefix}melody C4 D4 E4 bars={refusal.max_bars}"
        )
    if isinstance(refusal, TooManySeedNotes):
        return (
            f"Openings here have at most {refusal.max_seed_notes} notes. "
            f"Try: {prefix}melody {EXAMPLE}"
        )
    if isinstance(refusal, CooldownActive):
        return f"Slow down a little: try again in {refusal.seconds_left:.0f} s."
    assert isinstance(refusal, QuotaExceeded)
    return (
        f"You've had your {melodies(refusal.quota)} for today; more from {utc(refusal.resets_at)}."
    )


def busy_reply(wait_s: float) -> Reply:
    return Reply(
        f"I'm busy composing for others right now. Please try again in about "
        f"{max(5, round(wait_s / 5) * 5)} seconds.",
        private=True,
    )
