"""The MIDI file written from a melody's steps: what music21 and the audio preview read back."""

import io

import mido
import pytest
from music21 import converter
from music21 import key as m21key
from music21 import meter as m21meter
from music21 import tempo as m21tempo
from music21.midi.translate import streamToMidiFile

from generator import encoding
from generator.midi_file import STEP_TICKS, TICKS_PER_QUARTER, melody_midi
from generator.render.audio import Performance
from generator.request import MelodyRequest

# Requests for the shipped model, with what each melody must show (an upbeat, rests, a minor key)
# for the case to test what it is here for.
CASES = {
    "4/4 in C": (
        "C4 D4 E4 seed=1 bars=4 bpm=97",
        {"meter": "4/4", "sharps": 0, "pickup": False, "rest": False},
    ),
    "3/4 upbeat in Eb": (
        "E4 pickup=1 meter=3/4 key=Eb seed=5 bars=4",
        {"meter": "3/4", "sharps": -3, "pickup": True, "rest": False},
    ),
    "6/8 rests in Bb": (
        "G4:0.5 C5 r C5 D5 meter=6/8 key=Bb seed=3 bars=4 bpm=70",
        {"meter": "6/8", "sharps": -2, "rest": True, "pickup": True},
    ),
    "2/2 in D minor": (
        "A3 C4 r E4:2 key=Dm meter=2/2 seed=2 bars=4 bpm=132",
        {"meter": "2/2", "sharps": -1, "minor": True, "pickup": True, "rest": True},
    ),
}


@pytest.fixture(scope="module", params=list(CASES))
def melody(request, shipped_engine):
    text, expect = CASES[request.param]
    composed = shipped_engine.compose(MelodyRequest.parse(text))
    assert composed.request.meter == expect["meter"]
    assert composed.key.sharps == expect["sharps"]
    assert (composed.key.mode == "minor") == expect.get("minor", False)
    assert (composed.pickup > 0) == expect["pickup"]
    assert (encoding.REST in composed.tokens) == expect["rest"]
    return composed


def _notes(score) -> list[tuple[int, float, float]]:
    """(MIDI pitch, offset, quarter length) of each note, tied pieces joined."""
    return [
        (n.pitch.midi, float(n.offset), float(n.quarterLength))
        for n in score.stripTies().flatten().notes
    ]


def _read(midi: bytes):
    return converter.parseData(midi, format="midi")


def test_the_same_request_and_seed_give_the_same_bytes(shipped_engine):
    request = MelodyRequest.parse("G4 A4 B4:2 meter=3/4 key=G temp=1.1 seed=99 bars=8")
    first, second = shipped_engine.compose(request), shipped_engine.compose(request)
    assert first.to_midi() == second.to_midi()
    assert first.to_midi(title="x") != first.to_midi()
    other = shipped_engine.compose(request.with_options(rng_seed=100))
    assert other.tokens != first.tokens and other.to_midi() != first.to_midi()


def test_music21_reads_back_the_score_s_notes_tempo_meter_and_key(melody):
    score = melody.to_score()
    back = _read(melody.to_midi())
    assert _notes(back) == _notes(score)
    for cls in (m21tempo.MetronomeMark, m21meter.TimeSignature, m21key.KeySignature):
        assert len(back.flatten().getElementsByClass(cls)) == 1, cls
    [(tempo, written_tempo)] = [
        (t.number, w.number)
        for t in back.flatten().getElementsByClass(m21tempo.MetronomeMark)
        for w in score.flatten().getElementsByClass(m21tempo.MetronomeMark)
    ]
    assert tempo == pytest.approx(written_tempo, abs=0.01)
    assert tempo == pytest.approx(melody.request.bpm, abs=0.01)
    signature = back.flatten().getElementsByClass(m21meter.TimeSignature)[0]
    written = score.flatten().getElementsByClass(m21meter.TimeSignature)[0]
    assert signature.ratioString == written.ratioString == melody.request.meter
    read_key = back.flatten().getElementsByClass(m21key.KeySignature)[0]
    written_key = score.flatten().getElementsByClass(m21key.Key)[0]
    assert isinstance(read_key, m21key.Key)
    assert (read_key.sharps, read_key.mode) == (written_key.sharps, written_key.mode)


def _same_notes(played: Performance, expected: Performance, bpm: float) -> None:
    """The same notes, each within a tick of where and how long it should sound."""
    tick = 60.0 / bpm / TICKS_PER_QUARTER
    assert len(played.notes) == len(expected.notes)
    for (start, length, pitch), (want_start, want_length, want_pitch) in zip(
        played.notes, expected.notes, strict=True
    ):
        assert pitch == want_pitch
        assert start == pytest.approx(want_start, abs=tick)
        assert length == pytest.approx(want_length, abs=tick)


def test_the_file_plays_the_notes_music21_s_file_played(melody):
    """The same notes as the file music21 wrote before (music21's ends later: it fills the
    last bar)."""
    before = Performance.of_midi(bytes(streamToMidiFile(melody.to_score()).writestr()))
    _same_notes(Performance.of_midi(melody.to_midi()), before, melody.request.bpm)


def test_the_audio_preview_plays_the_file_as_it_plays_the_melody(melody):
    from_file = Performance.of_midi(melody.to_midi())
    from_tokens = Performance.of_tokens(melody.tokens, melody.request.bpm)
    _same_notes(from_file, from_tokens, melody.request.bpm)
    tick = 60.0 / melody.request.bpm / TICKS_PER_QUARTER
    assert from_file.duration_s == pytest.approx(from_tokens.duration_s, abs=tick)


def test_every_note_starts_and_ends_on_its_exact_tick_and_the_file_ends_with_the_melody():
    # Holds before any note are a rest; 62 crosses the 3/4 bar line; the melody ends on a rest.
    tokens = ["_", "_", "60", "_", *["62"] + ["_"] * 13, "r", "64", "r", "_", "_"]
    midi = melody_midi(tokens, bpm=90, meter="3/4", key_sharps=1, minor=False)
    notes = mido.MidiFile(file=io.BytesIO(midi)).tracks[1]
    now, sounding, found = 0, {}, []
    for message in notes:
        now += message.time
        if message.type == "note_on" and message.velocity:
            sounding[message.note] = now
        elif message.type in ("note_on", "note_off"):
            found.append((message.note, sounding.pop(message.note), now))
    steps = STEP_TICKS
    assert found == [
        (60, 2 * steps, 4 * steps),
        (62, 4 * steps, 18 * steps),
        (64, 19 * steps, 20 * steps),
    ]
    assert now == len(tokens) * steps  # the end of track, after the final rest
    score = encoding.decode(tokens, meter="3/4", bpm=90, key=m21key.Key("G"))
    assert _notes(_read(midi)) == _notes(score)


def test_title_program_and_velocity_are_written():
    midi = melody_midi(
        ["67", "_", "69"], bpm=120, meter="2/4", key_sharps=0, minor=True, program=73, title="№1 ·"
    )
    conductor, notes = mido.MidiFile(file=io.BytesIO(midi), charset="utf-8").tracks
    assert conductor.name == "№1 ·" and not notes.name
    assert [(m.channel, m.program) for m in notes if m.type == "program_change"] == [(0, 73)]
    assert {m.velocity for m in notes if m.type == "note_on"} == {90}
    [instrument] = _read(midi).recurse().getElementsByClass("Instrument")
    assert instrument.midiProgram == 73
    untitled = melody_midi(["67"], bpm=120, meter="2/4", key_sharps=0, minor=True)
    assert not any(
        m.type == "track_name"
        for track in mido.MidiFile(file=io.BytesIO(untitled)).tracks
        for m in track
    )


@pytest.mark.parametrize(
    ("tonic", "mode", "sharps"), [("G#", "major", -4), ("F-", "major", 4), ("a#", "minor", 7)]
)
def test_a_key_beyond_seven_sharps_or_flats_is_written_as_its_equivalent(tonic, mode, sharps):
    written = m21key.Key(tonic, mode)
    midi = melody_midi(
        ["68", "_", "70"], bpm=100, meter="4/4", key_sharps=written.sharps, minor=mode == "minor"
    )
    [read] = _read(midi).flatten().getElementsByClass(m21key.KeySignature)
    assert (read.sharps, read.mode) == (sharps, mode)


@pytest.mark.parametrize("meter", ["3/5", "x/4", "4"])
def test_a_meter_midi_cannot_hold_is_refused(meter):
    with pytest.raises(ValueError, match="time signature"):
        melody_midi(["60"], bpm=100, meter=meter, key_sharps=0, minor=False)
