"""Plain records the repository returns, and the refusals a melody request can meet."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace

GLOBAL = ""  # the platform/chat id of settings that apply everywhere

LIMIT_NAMES = ("daily_quota", "cooldown_s", "max_bars", "max_seed_notes", "enabled")


@dataclass(frozen=True)
class Limits:
    """What applies in one chat: code defaults, overridden by global rows, then by chat rows."""

    daily_quota: int = 50
    cooldown_s: int = 10
    max_bars: int = 32
    max_seed_notes: int = 32
    enabled: bool = True

    def with_value(self, name: str, value: int) -> Limits:
        if name not in LIMIT_NAMES:
            raise ValueError(f"unknown limit {name!r}")
        kind = {f.name: f.type for f in fields(self)}[name]
        return replace(self, **{name: bool(value) if kind in ("bool", bool) else int(value)})


@dataclass(frozen=True)
class User:
    id: int
    platform: str
    platform_user_id: str
    display_name: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class Generation:
    id: int
    user_id: int
    platform: str
    chat_id: str
    request_text: str
    request_json: str
    model_name: str
    model_version: str
    rng_seed: int
    midi: bytes | None
    status: str
    error: str | None
    created_at: float
    completed_at: float | None
    melody_key: str | None = None
    steps: int | None = None

    @property
    def request(self) -> dict:
        return json.loads(self.request_json)


@dataclass(frozen=True)
class Ban:
    id: int
    platform: str
    chat_id: str
    user_id: int
    banned_by: str
    reason: str
    created_at: float
    expires_at: float | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    platform: str
    chat_id: str
    actor: str
    action: str
    target: str
    old_value: str | None
    new_value: str | None
    created_at: float


class Refusal(Exception):
    """Why a melody request may not run now; the bot turns each kind into a friendly reply."""


class Banned(Refusal):
    def __init__(self, ban: Ban):
        self.ban = ban
        super().__init__(f"banned until {ban.expires_at or 'further notice'}")


class ChatDisabled(Refusal):
    pass


class QuotaExceeded(Refusal):
    def __init__(self, quota: int, resets_at: float):
        self.quota = quota
        self.resets_at = resets_at
        super().__init__(f"daily quota of {quota} reached")


class CooldownActive(Refusal):
    def __init__(self, seconds_left: float):
        self.seconds_left = seconds_left
        super().__init__(f"cooldown: {seconds_left:.0f} s left")
