import io

import numpy as np
import pytest
from music21 import converter, note

from generator.engine import STOPPED_AT_LENGTH, STOPPED_AT_SONG_END, sample
from generator.request import MelodyRequest, RequestError


def _midi_pitches(midi: bytes) -> list[int]:
    score = converter.parseData(io.BytesIO(midi).getvalue(), format="midi")
    return [n.pitch.midi for n in score.flatten().notes if isinstance(n, note.Note)]


def test_same_request_and_seed_give_identical_midi(shipped_engine):
    request = MelodyRequest.parse("C4 D4 E4 temp=0.9 seed=42")
    first, second = shipped_engine.compose(request), shipped_engine.compose(request)
    assert first.tokens == second.tokens
    assert first.to_midi() == second.to_midi()
    other = shipped_engine.compose(request.with_options(rng_seed=43))
    assert other.tokens != first.tokens


def test_batch_gives_the_same_melodies_as_one_by_one(shipped_engine):
    requests = [
        MelodyRequest.parse("C4 D4 E4 temp=0.9 seed=1"),
        MelodyRequest.parse("A3 C4 E4:2 temp=1.2 seed=2 bars=4 key=Am"),
        MelodyRequest.parse("G4:0.5 A4:0.5 B4 temp=0.5 seed=3 steps=300 topk=5"),
    ]
    batched = shipped_engine.compose_many(requests)
    assert [m.tokens for m in batched] == [shipped_engine.compose(r).tokens for r in requests]


def test_melody_starts_with_the_seed_in_its_key_and_reads_back_as_midi(shipped_engine):
    request = MelodyRequest.parse("G4 A4 B4:2 D5 temp=0.8 key=G seed=7 bars=8")
    melody = shipped_engine.compose(request)
    assert melody.tokens[: request.seed_steps] == tuple(request.seed_tokens())
    assert melody.key_label == "G"
    assert _midi_pitches(melody.to_midi())[:4] == [67, 69, 71, 74]
    assert melody.steps <= request.total_steps


def test_generated_notes_stay_in_the_model_range_after_transposing_back(shipped_engine):
    request = MelodyRequest.parse("F#4 G#4 A#4 temp=2 key=F# seed=11 bars=16")
    melody = shipped_engine.compose(request)
    low, high = shipped_engine.pitch_range(-6)  # F# major is 6 semitones above C
    pitches = [int(t) for t in melody.tokens if t.isdigit()]
    assert pitches and all(low <= p <= high for p in pitches)


def test_stops_at_length_cap_or_song_end(shipped_engine):
    melodies = shipped_engine.compose_many(
        [MelodyRequest.parse(f"C4 E4 G4 temp=1 seed={s} steps=40") for s in range(10)]
    )
    for melody in melodies:
        assert melody.stopped_by in (STOPPED_AT_LENGTH, STOPPED_AT_SONG_END)
        assert melody.steps <= 40
        if melody.stopped_by == STOPPED_AT_LENGTH:
            assert melody.steps == 40


def test_seed_outside_the_model_range_names_the_range(shipped_engine):
    with pytest.raises(RequestError, match=r"C8 is outside the range this model knows: \w+"):
        shipped_engine.compose(MelodyRequest.parse("C8 D4 key=C"))


def test_key_is_detected_from_the_seed(shipped_engine):
    melody = shipped_engine.compose(MelodyRequest.parse("D4 F#4 A4 D5 C#5 seed=1"))
    assert melody.key_label in ("D", "Bm")


def test_random_seed_is_reported_so_the_melody_can_be_redone(shipped_engine):
    melody = shipped_engine.compose(MelodyRequest.parse("C4 D4 E4"))
    again = shipped_engine.compose(MelodyRequest.parse(f"C4 D4 E4 seed={melody.rng_seed}"))
    assert again.tokens == melody.tokens


def test_musicxml_carries_title_key_and_meter(shipped_engine):
    melody = shipped_engine.compose(MelodyRequest.parse("E4 G4 B4 meter=3/4 key=Em seed=3 bpm=80"))
    xml = melody.to_musicxml(title="#9 · E4 G4 B4").decode()
    assert "#9 · E4 G4 B4" in xml and "<beats>3</beats>" in xml and "<fifths>1</fifths>" in xml
    assert melody.duration_seconds == pytest.approx(melody.steps * 0.25 * 60 / 80)


def test_top_k_one_is_greedy_and_top_p_keeps_the_head():
    request = MelodyRequest.parse("C4 topk=1")
    logits = np.array([0.1, 3.0, 0.2, 2.9])
    allowed = np.ones(4, bool)
    rng = np.random.default_rng(0)
    assert {sample(logits, rng, request, allowed) for _ in range(50)} == {1}
    nucleus = MelodyRequest.parse("C4 topp=0.5")
    assert {sample(logits, rng, nucleus, allowed) for _ in range(200)} <= {1, 3}
    masked = allowed.copy()
    masked[1] = False
    assert 1 not in {sample(logits, rng, MelodyRequest.parse("C4"), masked) for _ in range(200)}


def test_temperature_sharpens_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    rng = np.random.default_rng(1)
    cold = MelodyRequest.parse("C4 temp=0.1")
    draws = [sample(logits, rng, cold, np.ones(3, bool)) for _ in range(300)]
    assert draws.count(0) > 290
