"""How replies say counts, times and lengths, the way a person (and a musician) would."""

from __future__ import annotations

import time

from generator.engine import Melody
from generator.request import MelodyRequest


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    """ "1 bar", "8 bars": a count with its noun as a person would write it."""
    return f"{count} {word if count == 1 else plural_word or word + 's'}"


def melodies(count: int) -> str:
    return plural(count, "melody", "melodies")


def utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def bars_text(melody: Melody) -> str:
    """How a musician says the length ("8 bars of 3/4 with an upbeat"); 4/4 goes unsaid."""
    bars = f"{melody.bars:g} bar{'' if melody.bars == 1 else 's'}"
    meter = "" if melody.request.meter == "4/4" else f" of {melody.request.meter}"
    upbeat = " with an upbeat" if melody.pickup else ""
    return bars + meter + upbeat


def opening(request: MelodyRequest) -> str:
    """The first notes and the temperature, for a score's title."""
    notes = " ".join(n.text or str(n.pitch) for n in request.seed_notes[:6])
    more = " …" if len(request.seed_notes) > 6 else ""
    return f"{notes}{more} · temp {request.temperature:g}"


def heading(melody_id: int, melody: Melody) -> str:
    """A melody's first line, in chat and on its page: ``#12 · key G · 8 bars of 3/4 · temp 0.8
    · seed 42``."""
    return (
        f"#{melody_id} · key {melody.key_label} · {bars_text(melody)} · "
        f"temp {melody.request.temperature:g} · seed {melody.rng_seed}"
    )
