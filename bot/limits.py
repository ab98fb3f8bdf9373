"""The limits a moderator may change in a chat, by the words they type (``!setlimit daily 20``),
with the values each may take. Their defaults are :class:`storage.Limits`'s; the settings and
``!setlimit`` both check against the bounds here."""

from __future__ import annotations

from dataclasses import dataclass

from generator.ranges import MAX_BARS, MAX_SEED_NOTES
from storage.records import Limits


@dataclass(frozen=True)
class ChangeableLimit:
    word: str  # as a moderator types it
    field: str  # as :class:`storage.Limits` names it
    low: int
    high: int

    @property
    def default(self) -> int:
        return getattr(Limits, self.field)


CHANGEABLE = {
    limit.word: limit
    for limit in (
        ChangeableLimit("daily", "daily_quota", 0, 10_000),
        ChangeableLimit("cooldown", "cooldown_s", 0, 86_400),
        ChangeableLimit("maxbars", "max_bars", 1, MAX_BARS),
        ChangeableLimit("maxnotes", "max_seed_notes", 1, MAX_SEED_NOTES),
    )
}
BY_FIELD = {limit.field: limit for limit in CHANGEABLE.values()}
