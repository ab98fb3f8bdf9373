"""Plain records the repository hands out, and the refusals a melody request can meet.

Records are frozen dataclasses rather than database rows so the bot core never holds a live
cursor and never learns the column layout. Times are Unix seconds (UTC) throughout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict

GLOBAL = ""
"""The platform or chat id of a setting or ban that applies everywhere below it.

Scopes nest: ``(GLOBAL, GLOBAL)`` is every chat on every platform, ``("discord", GLOBAL)`` every
chat on Discord, ``("discord", "1234")`` one guild or chat.
"""

LIMIT_NAMES = ("daily_quota", "cooldown_s", "max_bars", "max_seed_notes", "enabled")


@dataclass(frozen=True)
class Limits:
    """What applies in one chat: these code defaults, then global rows, then the chat's own rows.

    The values here are the defaults, the one place they are written: the bot's settings
    start from them and pass what the operator chose to ``Repository.open(defaults=...)``.
    """

    daily_quota: int = 50
    cooldown_s: int = 10
    max_bars: int = 32
    max_seed_notes: int = 32
    enabled: bool = True

    def with_value(self, name: str, value: int) -> Limits:
        """A copy with one limit changed; stored values are integers, ``enabled`` reads as bool."""
        check_limit(name, value)
        kinds = {f.name: f.type for f in fields(self)}
        typed = bool(value) if kinds[name] in ("bool", bool) else int(value)
        return replace(self, **{name: typed})


def check_limit(name: str, value: int) -> None:
    """Refuse what no chat could sensibly mean, before it reaches the database."""
    if name not in LIMIT_NAMES:
        raise ValueError(f"unknown limit {name!r}; limits are {', '.join(LIMIT_NAMES)}")
    if isinstance(value, float) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if name == "enabled" and value not in (0, 1):
        raise ValueError(f"enabled is 0 or 1, not {value!r}")
    if not 0 <= value < 2**63:
        raise ValueError(f"{name} must be zero or more, not {value!r}")


@dataclass(frozen=True)
class User:
    """Someone on one platform; the same person on Discord and Telegram is two users."""

    id: int
    platform: str
    platform_user_id: str
    display_name: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class MelodyRecord:
    """One melody request and what came of it: enough to re-send or regenerate it exactly."""

    id: int
    user_id: int
    platform: str
    chat_id: str
    request_text: str
    request_json: str
    model_name: str
    model_version: str
    rng_seed: int
    status: str  # 'pending', 'done' or 'failed'
    error: str | None
    created_at: float
    completed_at: float | None
    midi: bytes | None
    melody_key: str | None
    steps: int | None
    tokens: str | None  # the melody's steps in its key, space-separated (None before schema 3)
    pickup: int | None  # its upbeat in steps
    owner: str | None  # the bot process composing it while pending (None before schema 4)
    reply_address: str | None  # where its reply goes, in the platform's own terms
    delivered_at: float | None  # when the platform took it (None: not yet, or before schema 4)
    source: str | None  # the platform's id of the message that asked, when it has one
    page_id: str | None  # where its web page is (/m/<page_id>); unguessable, unlike ``id``

    @property
    def request(self) -> dict[str, Any]:
        """The parsed request as the bot core recorded it."""
        return json.loads(self.request_json)


@dataclass(frozen=True)
class Gallery:
    """A chat's page of recent melodies, listed only while ``enabled``."""

    platform: str
    chat_id: str
    page_id: str
    enabled: bool
    show_names: bool
    changed_at: float


@dataclass(frozen=True)
class PageEntry:
    """A melody as a public page shows it: the composer's name only where the chat allows."""

    melody: MelodyRecord
    composer: str | None


@dataclass(frozen=True)
class Ban:
    """A user barred from one scope; an expired or lifted ban is history, not a ban."""

    id: int
    user_id: int
    platform: str
    chat_id: str
    banned_by: str
    reason: str
    created_at: float
    expires_at: float | None
    lifted_at: float | None
    lifted_by: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One moderator action; the table refuses updates and deletes, so these are final."""

    id: int
    platform: str
    chat_id: str
    actor: str
    action: str
    target: str
    old_value: str | None
    new_value: str | None
    created_at: float


class Stats(TypedDict):
    """Finished melodies in a scope: ``(YYYY-MM-DD, n)`` newest day first, busiest users first."""

    per_day: list[tuple[str, int]]
    per_user: list[tuple[str, int]]


class Refusal(Exception):
    """Why a melody request may not run now; the bot turns each kind into a friendly reply."""


class Banned(Refusal):
    def __init__(self, ban: Ban):
        self.ban = ban
        until = "further notice" if ban.expires_at is None else f"{ban.expires_at:.0f}"
        super().__init__(f"banned until {until}: {ban.reason or 'no reason given'}")


class ChatDisabled(Refusal):
    def __init__(self, platform: str = GLOBAL, chat_id: str = GLOBAL):
        self.platform = platform
        self.chat_id = chat_id
        super().__init__(f"the bot is switched off in {platform}:{chat_id}")


class QuotaExceeded(Refusal):
    def __init__(self, quota: int, resets_at: float):
        self.quota = quota
        self.resets_at = resets_at  # when the next request will be accepted
        super().__init__(f"daily quota of {quota} reached")


class AlreadyReceived(Refusal):
    """This very message has made its melody already (it was seen twice, e.g. replayed after a
    crash): nothing more to do for it."""

    def __init__(self, source: str):
        self.source = source
        super().__init__(f"already received: {source}")


class TooLong(Refusal):
    """A melody longer than the chat's ``max_bars``."""

    def __init__(self, max_bars: int):
        self.max_bars = max_bars
        super().__init__(f"longer than {max_bars} bars")


class TooManySeedNotes(Refusal):
    """An opening with more notes than the chat's ``max_seed_notes``."""

    def __init__(self, max_seed_notes: int):
        self.max_seed_notes = max_seed_notes
        super().__init__(f"more than {max_seed_notes} starting notes")


class CooldownActive(Refusal):
    def __init__(self, seconds_left: float):
        self.seconds_left = seconds_left
        super().__init__(f"cooldown: {seconds_left:.0f} s left")
