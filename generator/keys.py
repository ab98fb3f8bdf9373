"""Keys and transposition: the model only knows C major and A minor.

Training songs are moved into those keys, and a request's seed is moved there before generation
and the result moved back, so the melody continues in the key the user played.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

import numpy as np
from music21 import key as m21key

REFERENCE_PITCH_CLASS = {"major": 0, "minor": 9}  # C major, A minor
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# Natural minor plus the raised seventh (harmonic minor's leading tone): the two forms folk
# tunes in minor use.
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)
# Key profiles, tonic first. Aarden's: how often each pitch class sounds in the major and minor
# songs of the Essen collection itself (music21's default), best for openings of some length.
# Krumhansl & Kessler's (listeners' ratings) are smoother, so two or three notes read the plain
# way under them (C D is C major, not C minor; A C is A minor, not F major).
AARDEN = {
    "major": np.array(
        [17.766, 0.146, 14.927, 0.160, 19.805, 11.359, 0.291, 22.062, 0.146, 8.155, 0.233, 4.951]
    ),
    "minor": np.array(
        [18.265, 0.738, 14.050, 16.860, 0.702, 14.436, 0.702, 18.616, 4.566, 1.932, 7.376, 1.756]
    ),
}
KRUMHANSL = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}
# How keys are usually spelled (music21 writes flats as "-"), by tonic pitch class.
TONIC_NAMES = {
    "major": ("C", "D-", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B"),
    "minor": ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B"),
}
# A key whose tonic the opening starts or ends on wins a near tie by this much correlation.
# The keys a user is offered while typing key= (the circle of fifths, major then minor).
COMMON_KEYS = tuple(
    f"{tonic}{mode}"
    for tonic in ("C", "G", "D", "A", "E", "B", "F#", "F", "Bb", "Eb", "Ab", "Db")
    for mode in ("", "m")
)
ANCHOR_BONUS = 0.05
# Openings with at most this many pitch classes are read only in keys whose scale holds them all.
SHORT_OPENING_CLASSES = 4


def scale_of(tonic: int, mode: str) -> set[int]:
    """Pitch classes of a key's scale."""
    steps = MINOR_SCALE if mode == "minor" else MAJOR_SCALE
    return {(tonic + s) % 12 for s in steps}


def profile_fit(
    histogram: np.ndarray, tonic: int, mode: str, profiles: dict[str, np.ndarray] = AARDEN
) -> float:
    """Correlation of a pitch-class histogram (C first) with a key's profile."""
    profile = np.roll(profiles["minor" if mode == "minor" else "major"], tonic)
    if not histogram.any() or np.all(histogram == histogram[0]):
        return 0.0
    return float(np.corrcoef(histogram, profile)[0, 1])


def detect_key(notes: Iterable[tuple[int | None, int]]) -> m21key.Key:
    """The key of an opening, given as (MIDI pitch or None for a rest, length in steps).

    The key whose profile best fits the opening's pitch classes, weighted by how long each
    sounds, a tonic the opening starts or ends on winning a near tie, major first on a tie. A
    short opening (:data:`SHORT_OPENING_CLASSES` pitch classes or fewer) fits many keys, so it is
    read only in keys whose scale holds all its notes, by the smoother Krumhansl-Kessler
    profiles: ``C4 D4`` and ``G4 C5 E5 G5`` are C major, ``A4 C5`` A minor. On the first two bars
    of the Essen songs (more than four pitch classes) this reads the key right 81 % of the time,
    where music21's own analysis (Aarden's profiles, notes unweighted) gets 80 %, in a tenth of
    the time (bench/bench_key_detection.py).
    """
    histogram = np.zeros(12)
    pitched = []
    for pitch, steps in notes:
        if pitch is not None:
            histogram[pitch % 12] += steps
            pitched.append(pitch)
    if not pitched:
        return cached_key("C", "major")
    classes = {p % 12 for p in pitched}
    anchors = {pitched[0] % 12, pitched[-1] % 12}
    keys = [(tonic, mode) for mode in ("major", "minor") for tonic in range(12)]
    profiles = AARDEN
    if len(classes) <= SHORT_OPENING_CLASSES:
        keys = [(t, m) for t, m in keys if classes <= scale_of(t, m)] or keys
        profiles = KRUMHANSL
    _, _, tonic, mode = max(
        (profile_fit(histogram, t, m, profiles) + ANCHOR_BONUS * (t in anchors), m == "major", t, m)
        for t, m in keys
    )
    return cached_key(TONIC_NAMES[mode][tonic], mode)


@cache
def cached_key(tonic: str, mode: str) -> m21key.Key:
    """music21 builds a scale network for every Key it makes (milliseconds); keys are reused."""
    return m21key.Key(tonic, mode)


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
    return cached_key(tonic + accidental, mode)


def key_label(k: m21key.Key) -> str:
    """A key as users write it: ``G``, ``F#m``, ``Bb``."""
    name = k.tonic.name.replace("-", "b")
    return name + ("m" if k.mode == "minor" else "")
