"""The bot's memory in SQLite: users, melodies, limits, bans and the audit log."""

from storage.models import (
    GLOBAL,
    AuditEntry,
    Ban,
    Banned,
    ChatDisabled,
    CooldownActive,
    Generation,
    Limits,
    QuotaExceeded,
    Refusal,
    User,
)
from storage.repository import Repository

__all__ = [
    "GLOBAL",
    "AuditEntry",
    "Ban",
    "Banned",
    "ChatDisabled",
    "CooldownActive",
    "Generation",
    "Limits",
    "QuotaExceeded",
    "Refusal",
    "Repository",
    "User",
]
