from pathlib import Path

import pytest
from music21 import converter, key, meter, note, stream

from generator import encoding
from generator.encoding import Event


def test_events_and_tokens_round_trip():
    events = [Event(60, 4), Event(62, 2), Event(None, 2), Event(64, 8)]
    tokens = encoding.events_to_tokens(events)
    assert tokens == ["60", "_", "_", "_", "62", "_", "r", "_", "64", *["_"] * 7]
    assert encoding.tokens_to_events(tokens) == events


def test_tokens_stop_at_delimiter_and_leading_hold_is_rest():
    assert encoding.tokens_to_events(["_", "60", "_", "/", "62"]) == [Event(None, 1), Event(60, 2)]


def test_zero_length_event_is_refused():
    with pytest.raises(ValueError):
        encoding.events_to_tokens([Event(60, 0)])


def test_kern_song_round_trips_through_notation(esac_dir: Path):
    """kern → tokens → notated stream (bars, ties) → tokens gives the same series."""
    for path in sorted((esac_dir / "erk").glob("*.krn"))[:5]:
        tokens = encoding.encode(converter.parse(path))
        score = encoding.decode(tokens, meter="3/4", bpm=90, key=key.Key("G"))
        assert encoding.encode(score) == tokens


def test_tied_notes_are_one_event():
    part = stream.Part()
    first, second = note.Note("C4", quarterLength=1), note.Note("C4", quarterLength=0.5)
    first.tie, second.tie = encoding_tie("start"), encoding_tie("stop")
    part.append([first, second, note.Note("D4", quarterLength=0.5)])
    assert encoding.encode(part) == ["60", "_", "_", "_", "_", "_", "62", "_"]


def encoding_tie(kind: str):
    from music21 import tie

    return tie.Tie(kind)


def test_decode_builds_bars_meter_key_and_tempo():
    tokens = encoding.events_to_tokens([Event(67, 6), Event(69, 6), Event(71, 12)])
    score = encoding.decode(tokens, meter="3/4", bpm=84, key=key.Key("G"), title="#1 · test")
    part = score.parts[0]
    assert len(part.getElementsByClass(stream.Measure)) == 2
    assert part.recurse().getElementsByClass(meter.TimeSignature).first().ratioString == "3/4"
    assert part.recurse().getElementsByClass(key.Key).first().sharps == 1
    assert score.metronomeMarkBoundaries()[0][2].number == 84
    assert score.metadata.title == "#1 · test"


def test_non_sixteenth_duration_is_refused():
    part = stream.Part([note.Note("C4", quarterLength=1 / 3)])
    with pytest.raises(ValueError, match="16th"):
        encoding.encode(part)
