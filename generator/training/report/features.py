"""Musical features of one melody, from its step symbols. Pure functions, no model, no I/O.

Melodies are token sequences in a known key (tonic pitch class and mode). Scales: major is the
Ionian scale; minor is natural minor plus the raised seventh (harmonic minor's leading tone), the
two forms folk tunes in minor use. Features about bars read the melody's own bar grid (meter and
upbeat, a :class:`~generator.form.Layout`), never an assumed 16-step bar.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from generator.encoding import DELIMITER, HOLD, Event, tokens_to_events
from generator.form import Layout
from generator.keys import scale_of

INTERVAL_BINS = ("unison", "step", "third", "fourth-fifth", "leap")
DURATION_BINS = (1, 2, 3, 4, 6, 8, 12, 16)  # in 16ths; anything else counts as "other"
DURATION_LABELS = ("1/16", "1/8", "3/16", "1/4", "3/8", "1/2", "3/4", "1", "other")


def pitches(tokens: Sequence[str]) -> list[int]:
    return [e.pitch for e in tokens_to_events(tokens) if e.pitch is not None]


def in_scale_rate(tokens: Sequence[str], tonic: int, mode: str) -> float:
    notes = pitches(tokens)
    if not notes:
        return 0.0
    scale = scale_of(tonic, mode)
    return sum(p % 12 in scale for p in notes) / len(notes)


def pitch_range(tokens: Sequence[str]) -> int:
    notes = pitches(tokens)
    return max(notes) - min(notes) if notes else 0


def distinct_pitch_classes(tokens: Sequence[str]) -> int:
    return len({p % 12 for p in pitches(tokens)})


def pitch_class_entropy(tokens: Sequence[str]) -> float:
    counts = Counter(p % 12 for p in pitches(tokens))
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def pitch_class_histogram(tokens: Sequence[str], tonic: int) -> np.ndarray:
    """Shares of the 12 pitch classes, counted from the tonic (index 0 = tonic)."""
    histogram = np.zeros(12)
    for p in pitches(tokens):
        histogram[(p - tonic) % 12] += 1
    return histogram / max(histogram.sum(), 1)


def interval_histogram(tokens: Sequence[str]) -> np.ndarray:
    """Shares of melodic intervals between consecutive notes (rests skipped) in five classes."""
    notes = pitches(tokens)
    histogram = np.zeros(len(INTERVAL_BINS))
    for a, b in itertools.pairwise(notes):
        size = abs(b - a)
        index = 0 if size == 0 else 1 if size <= 2 else 2 if size <= 4 else 3 if size <= 7 else 4
        histogram[index] += 1
    return histogram / max(histogram.sum(), 1)


def duration_histogram(tokens: Sequence[str]) -> np.ndarray:
    histogram = np.zeros(len(DURATION_LABELS))
    for event in tokens_to_events(tokens):
        index = DURATION_BINS.index(event.steps) if event.steps in DURATION_BINS else -1
        histogram[index] += 1
    return histogram / max(histogram.sum(), 1)


def ends_on_tonic(tokens: Sequence[str], tonic: int) -> bool:
    notes = pitches(tokens)
    return bool(notes) and notes[-1] % 12 == tonic % 12


def full_bars(tokens: Sequence[str], layout: Layout) -> list[tuple[str, ...]]:
    """The melody's whole bars after the upbeat, each as its steps."""
    bar = layout.bar_steps
    starts = range(layout.pickup, len(tokens) - bar + 1, bar)
    return [tuple(tokens[i : i + bar]) for i in starts]


def repeated_bar_share(tokens: Sequence[str], layout: Layout) -> float:
    """Share of whole bars that repeat an earlier bar of the same melody exactly."""
    bars = full_bars(tokens, layout)
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for bar in bars:
        repeats += bar in seen
        seen.add(bar)
    return repeats / len(bars) if bars else 0.0


def _timed_events(tokens: Sequence[str]) -> list[tuple[int, Event]]:
    """Events with their start step."""
    start = 0
    timed = []
    for event in tokens_to_events(tokens):
        timed.append((start, event))
        start += event.steps
    return timed


def bars_starting_with_note(tokens: Sequence[str], layout: Layout) -> float:
    """Share of whole bars whose downbeat is a new note (not a held note, not a rest)."""
    bars = full_bars(tokens, layout)
    return sum(bar[0] not in (HOLD, "r") for bar in bars) / len(bars) if bars else 0.0


def bars_on_the_grid(tokens: Sequence[str], layout: Layout) -> float:
    """Share of whole bars that nothing is held into: every bar line falls between events."""
    bars = full_bars(tokens, layout)
    return sum(bar[0] != HOLD for bar in bars) / len(bars) if bars else 0.0


def notes_tied_over_bar_lines(tokens: Sequence[str], layout: Layout) -> float:
    """Share of notes that sound across a bar line (music a singer would not phrase so)."""
    notes = [(start, e) for start, e in _timed_events(tokens) if e.pitch is not None]
    crossing = sum(layout.bar_of(start) != layout.bar_of(start + e.steps - 1) for start, e in notes)
    return crossing / len(notes) if notes else 0.0


def long_notes_in_even_bars(tokens: Sequence[str], layout: Layout) -> float | None:
    """Share of long notes (half a bar or more) that start in bar 2, 4, 6 … (None: no long note).

    Folk phrases last two or four bars and end on a long note, so long notes gather in the even
    bars; a melody without phrases spreads them evenly.
    """
    long_notes = [
        start
        for start, e in _timed_events(tokens)
        if e.pitch is not None and e.steps * 2 >= layout.bar_steps and start >= layout.pickup
    ]
    if not long_notes:
        return None
    return sum(layout.bar_of(start) % 2 == 1 for start in long_notes) / len(long_notes)


def ends_at_bar_line(tokens: Sequence[str], layout: Layout) -> bool:
    return (len(tokens) - layout.pickup) % layout.bar_steps == 0


def cadential_ending(tokens: Sequence[str], layout: Layout, tonic: int) -> bool:
    """Ends like a folk song: the last note is the tonic, starts on a strong beat of its bar,
    lasts at least a quarter note and closes the melody at a bar line."""
    timed = [(start, e) for start, e in _timed_events(tokens) if e.pitch is not None]
    if not timed or not ends_at_bar_line(tokens, layout):
        return False
    start, last = timed[-1]
    strong = layout.position_of(start) in layout.meter.cadence_positions
    return last.pitch % 12 == tonic % 12 and strong and len(tokens) - start >= 4


def _prefix_hashes(sequence: np.ndarray, base: np.uint64) -> np.ndarray:
    prefix = np.zeros(len(sequence) + 1, np.uint64)
    with np.errstate(over="ignore"):
        for i, value in enumerate(sequence):
            prefix[i + 1] = prefix[i] * base + value
    return prefix


class CopyFinder:
    """Longest run of steps a melody shares verbatim with any training song (memorisation).

    Polynomial rolling hashes (mod 2**64) of every window of the training stream, one sorted array
    per window length, built on demand; a binary search over lengths then needs a handful of
    lookups per melody.
    """

    BASE = np.uint64(1_000_003)

    def __init__(self, training_songs: Sequence[Sequence[str]]):
        symbols: dict[str, int] = {}
        stream: list[int] = []
        for song in training_songs:
            stream.extend(symbols.setdefault(t, len(symbols) + 2) for t in song)
            stream.append(1)  # a boundary no melody contains, so no window spans two songs
        self._symbols = symbols
        self._prefix = _prefix_hashes(np.array(stream, np.uint64), self.BASE)
        self._windows: dict[int, np.ndarray] = {}

    def _power(self, length: int) -> np.uint64:
        power = np.uint64(1)
        with np.errstate(over="ignore"):
            for _ in range(length):
                power = power * self.BASE
        return power

    def _windows_of(self, prefix: np.ndarray, length: int) -> np.ndarray:
        if len(prefix) - 1 < length:
            return np.zeros(0, np.uint64)
        with np.errstate(over="ignore"):
            return prefix[length:] - prefix[:-length] * self._power(length)

    def _training_windows(self, length: int) -> np.ndarray:
        if length not in self._windows:
            self._windows[length] = np.unique(self._windows_of(self._prefix, length))
        return self._windows[length]

    def _shares_window(self, prefix: np.ndarray, length: int) -> bool:
        """Whether any window of this length is also a training window (sorted-array lookup)."""
        known = self._training_windows(length)
        windows = self._windows_of(prefix, length)
        if not len(known) or not len(windows):
            return False
        slots = np.minimum(np.searchsorted(known, windows), len(known) - 1)
        return bool((known[slots] == windows).any())

    def longest_copy(self, tokens: Sequence[str]) -> int:
        """Longest shared run in steps: exact up to 32, then rounded down to 8 (to 128) or 32.

        The search walks a fixed ladder of lengths, so the whole report sorts the training
        windows for at most ~80 lengths instead of one per distinct melody length.
        """
        melody = np.array([self._symbols.get(t, 0) for t in tokens if t != DELIMITER], np.uint64)
        prefix = _prefix_hashes(melody, self.BASE)
        ladder = [n for n in COPY_LADDER if n <= len(melody)]
        low, high = 0, len(ladder)  # ladder[:low] are known to match
        while low < high:
            middle = (low + high + 1) // 2
            if self._shares_window(prefix, ladder[middle - 1]):
                low = middle
            else:
                high = middle - 1
        return ladder[low - 1] if low else 0


COPY_LADDER = (*range(1, 33), *range(40, 129, 8), *range(160, 4097, 32))
