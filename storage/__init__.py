"""The bot's memory in one SQLite file: users, melodies, limits, bans and the audit log.

Every front-end process (Discord, Telegram, console) opens the same file through
:class:`Repository`; SQLite's locking, not the processes, keeps their writes apart.
"""

from storage.db import StorageFull
from storage.records import (
    GLOBAL,
    LIMIT_NAMES,
    AlreadyReceived,
    AuditEntry,
    Ban,
    Banned,
    ChatDisabled,
    CooldownActive,
    Gallery,
    Limits,
    MelodyRecord,
    PageEntry,
    QuotaExceeded,
    Refusal,
    Stats,
    TooLong,
    TooManySeedNotes,
    User,
)
from storage.repository import Repository

__all__ = [
    "GLOBAL",
    "LIMIT_NAMES",
    "AlreadyReceived",
    "AuditEntry",
    "Ban",
    "Banned",
    "ChatDisabled",
    "CooldownActive",
    "Gallery",
    "Limits",
    "MelodyRecord",
    "PageEntry",
    "QuotaExceeded",
    "Refusal",
    "Repository",
    "Stats",
    "StorageFull",
    "TooLong",
    "TooManySeedNotes",
    "User",
]
