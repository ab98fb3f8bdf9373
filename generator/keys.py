"""Keys and transposition: the model only knows C major and A minor.

Training songs are moved into those keys, and a request's seed is moved there before generation
and the result moved back, so the melody continues in the key the user played.
"""

from __future__ import annotations

import re

import numpy as np
from music21 import key as m21key

REFERENCE_PITCH_CLASS = {"major": 0, "minor": 9}  # C major, A minor
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# Natural minor plus the raised seventh (harmonic minor's leading tone): the two forms folk
# tunes in minor use.
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)
# Krumhansl & Kessler's key profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def scale_of(tonic: int, mode: str) -> set[int]:
    """Pitch classes of a key's scale."""
    steps = MINOR_SCALE if mode == "minor" else MAJOR_SCALE
    return {(tonic + s) % 12 for s in steps}


def profile_fit(histogram: np.ndarray, tonic: int, mode: str) -> float:
    """Correlation of a pitch-class histogram (C first) with a key's Krumhansl-Kessler profile."""
    profile = np.roll(KK_MINOR if mode == "minor" else KK_MAJOR, tonic)
    if not histogram.any() or np.all(histogram == histogram[0]):
        return 0.0
    return float(np.corrcoef(histogram, profile)[0, 1])


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
