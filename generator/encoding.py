"""Melodies as a time series of 16th-note steps, and back.

Each step is one symbol: a MIDI number where a note starts, ``_`` while the previous event is held,
``r`` where a rest starts, and ``/`` between songs. This is the representation the model reads and
writes; everything musical (durations, meter, key) is reconstructed from it by :func:`decode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from music21 import bar as m21bar
from music21 import clef as m21clef
from music21 import key as m21key
from music21 import metadata as m21metadata
from music21 import meter as m21meter
from music21 import note as m21note
from music21 import stream as m21stream
from music21 import tempo as m21tempo
from music21 import tie as m21tie

STEP_QL = 0.25  # one step is a 16th note, in quarter lengths
HOLD = "_"
REST = "r"
DELIMITER = "/"

# Durations the training data may contain (quarter lengths): 16th up to whole note.
ACCEPTABLE_DURATIONS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


@dataclass(frozen=True, slots=True)
class Event:
    """One note or rest: ``pitch`` is a MIDI number, or None for a rest; ``steps`` its length."""

    pitch: int | None
    steps: int


def events_to_tokens(events: Iterable[Event]) -> list[str]:
    """Spell events as step symbols: the onset symbol, then holds for the rest of its length."""
    tokens: list[str] = []
    for event in events:
        if event.steps < 1:
            raise ValueError(f"an event must last at least one step, got {event.steps}")
        tokens.append(REST if event.pitch is None else str(event.pitch))
        tokens.extend([HOLD] * (event.steps - 1))
    return tokens


def tokens_to_events(tokens: Sequence[str]) -> list[Event]:
    """Group step symbols back into events; holds at the very start count as a rest."""
    events: list[Event] = []
    for token in tokens:
        if token == DELIMITER:
            break
        if token == HOLD:
            if events:
                last = events[-1]
                events[-1] = Event(last.pitch, last.steps + 1)
            else:
                events.append(Event(None, 1))
        elif token == REST:
            if events and events[-1].pitch is None:
                last = events[-1]
                events[-1] = Event(None, last.steps + 1)
            else:
                events.append(Event(None, 1))
        else:
            events.append(Event(int(token), 1))
    return events


def stream_to_events(score: m21stream.Stream) -> list[Event]:
    """Read a monophonic music21 stream as events, merging tied notes into one.

    Raises ValueError if a note or rest is not a whole number of 16th steps; callers filter such
    songs out before encoding, so this only fires on data the filter did not see.
    """
    events: list[Event] = []
    for element in score.flatten().notesAndRests:
        if element.duration.isGrace:
            continue
        steps_float = element.quarterLength / STEP_QL
        steps = round(steps_float)
        if steps < 1 or abs(steps - steps_float) > 1e-6:
            raise ValueError(f"duration {element.quarterLength} is not a multiple of a 16th")
        if isinstance(element, m21note.Rest):
            events.append(Event(None, steps))
            continue
        if not isinstance(element, m21note.Note):
            raise ValueError("chords cannot be encoded in a monophonic melody")
        tie = element.tie.type if element.tie is not None else None
        continues_previous = (
            tie in ("stop", "continue") and events and events[-1].pitch == (element.pitch.midi)
        )
        if continues_previous:
            last = events[-1]
            events[-1] = Event(last.pitch, last.steps + steps)
        else:
            events.append(Event(element.pitch.midi, steps))
    return events


def encode(score: m21stream.Stream) -> list[str]:
    """A music21 stream as step symbols (no delimiter)."""
    return events_to_tokens(stream_to_events(score))


_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "D-", "D", "E-", "E", "F", "G-", "G", "A-", "A", "B-", "B")


def spell(midi: int, key: m21key.Key | None = None) -> m21note.Note:
    """A note for a MIDI number, spelled the way the key signature suggests (Ab in Eb major, G#
    in A minor), with no explicit natural signs, so only real accidentals get printed."""
    names = _FLAT_NAMES if key is not None and key.sharps < 0 else _SHARP_NAMES
    return m21note.Note(f"{names[midi % 12]}{midi // 12 - 1}")


def decode(
    tokens: Sequence[str],
    *,
    meter: str = "4/4",
    bpm: float = 100.0,
    key: m21key.Key | None = None,
    title: str | None = None,
    pickup: int = 0,
) -> m21stream.Score:
    """Build a notated score from step symbols: notes with real durations, bars, key and tempo.

    Bars are laid out from the upbeat (``pickup`` steps before the first bar line, numbered bar 0
    as musicians number an incomplete first bar); a note that crosses a bar line is split into
    tied notes, and music21's ``makeNotation`` spells the rest (beams, dotted and tied values).
    """
    signature = m21meter.TimeSignature(meter)
    bar_steps = round(signature.barDuration.quarterLength / STEP_QL)
    part = m21stream.Part()
    bars = _bars(tokens_to_events(tokens), bar_steps, pickup)
    for number, pieces in enumerate(bars, start=0 if pickup else 1):
        measure = m21stream.Measure(number=number)
        if not part.getElementsByClass(m21stream.Measure):
            measure.append(m21clef.TrebleClef())
            measure.append(m21meter.TimeSignature(meter))
            if key is not None:
                measure.append(m21key.Key(key.tonic.name, key.mode))
            measure.append(m21tempo.MetronomeMark(number=bpm, referent=1.0))
        for pitch, steps, tie in pieces:
            element = m21note.Rest() if pitch is None else spell(pitch, key)
            element.quarterLength = steps * STEP_QL
            if tie is not None and pitch is not None:
                element.tie = m21tie.Tie(tie)
            measure.append(element)
        if number == 0 and pickup:
            measure.paddingLeft = (bar_steps - pickup) * STEP_QL
        part.append(measure)
    measures = part.getElementsByClass(m21stream.Measure)
    if measures:
        measures[-1].rightBarline = m21bar.Barline("final")  # the song ends here
    score = m21stream.Score()
    score.insert(0, part)
    # Without metadata music21 credits "Music21" as the composer on every score.
    score.metadata = m21metadata.Metadata(title=title or "", composer="melodybot")
    return score.makeNotation()


def _bars(
    events: Sequence[Event], bar_steps: int, pickup: int
) -> list[list[tuple[int | None, int, str | None]]]:
    """Events cut at the bar lines: per bar, (pitch, steps, tie type or None) pieces."""
    bars: list[list[tuple[int | None, int, str | None]]] = [[]]
    room = pickup or bar_steps  # steps left in the current bar
    for event in events:
        left = event.steps
        first = True
        while left:
            if room == 0:
                bars.append([])
                room = bar_steps
            piece = min(left, room)
            left -= piece
            room -= piece
            tie = None
            if not (first and not left):
                tie = "start" if first else ("stop" if not left else "continue")
            bars[-1].append((event.pitch, piece, tie))
            first = False
    return bars
