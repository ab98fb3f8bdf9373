"""Keys and transposition: the model only knows C major and A minor.

Training songs are moved into those keys, and a request's seed is moved there before generation
and the result moved back, so the melody continues in the key the user played.
"""

from __future__ import annotations

import re

from music21 import key as m21key

REFERENCE_PITCH_CLASS = {"major": 0, "minor": 9}  # C major, A minor

_KEY_PATTERN = re.compile(
    r"^(?P<tonic>[A-Ga-g])(?P<accidental>#|b|♯|♭|-)?(?P<mode>m|min|minor|maj|major)?$"
)


def shift_to_reference(tonic_pitch_class: int, mode: str) -> int:
    """Semitones that move a key's tonic onto C (major) or A (minor), the smallest way: -6..+5."""
    target = REFERENCE_PITCH_CLASS["minor" if mode == "minor" else "major"]
    shift = (target - tonic_pitch_class) % 12
    return shift - 12 if shift > 5 else shift


def parse_key(text: str) -> m21key.Key:
    """Read a key as users type it: ``G``, ``Em``, ``F#m``, ``Bb``, ``Eb major``."""
    cleaned = text.strip().replace(" ", "")
    match = _KEY_PATTERN.match(cleaned)
    if not match:
        raise ValueError(text)
    tonic = match["tonic"].upper()
    accidental = {"#": "#", "♯": "#", "b": "-", "♭": "-", "-": "-"}.get(
        match["accidental"] or "", ""
    )
    mode = (
        "minor"
        if (match["mode"] or "").startswith("m")
        and match["mode"]
        not in (
            "maj",
            "major",
        )
        else "major"
    )
    return m21key.Key(tonic + accidental, mode)


def key_label(k: m21key.Key) -> str:
    """A key as users write it: ``G``, ``F#m``, ``Bb``."""
    name = k.tonic.name.replace("-", "b")
    return name + ("m" if k.mode == "minor" else "")
