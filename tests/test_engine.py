import io

import numpy as np
import pytest
from music21 import converter, note

from generator import form
from generator.engine import ENDED_BY_MODEL, ENDED_BY_RULE, FINAL_DEGREES, detect_key, sample
from generator.request import MelodyRequest, RequestError
from generator.training.report.features import ends_at_bar_line


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
    assert melody.steps == request.total_steps == 8 * 16


def test_generated_notes_stay_in_the_model_range_after_transposing_back(shipped_engine):
    request = MelodyRequest.parse("F#4 G#4 A#4 temp=2 key=F# seed=11 bars=16")
    melody = shipped_engine.compose(request)
    low, high = shipped_engine.pitch_range(-6)  # F# major is 6 semitones above C
    pitches = [int(t) for t in melody.tokens if t.isdigit()]
    assert pitches and all(low <= p <= high for p in pitches)


@pytest.mark.parametrize("meter", ["2/4", "3/4", "4/4", "6/8", "3/8", "2/2"])
def test_every_melody_is_exactly_the_bars_asked_for_and_ends_with_a_cadence(tiny_engine, meter):
    """Whatever the model would rather do, the length is the request's and the end a cadence."""
    bar = form.model_meter(meter).steps_per_bar
    requests = [
        MelodyRequest.parse(f"C4 E4:0.5 meter={meter} bars={bars} temp={temp} seed={seed}")
        for bars in (2, 5, 8, 17, 32)
        for temp in (0.5, 1.0, 2.0)
        for seed in range(3)
    ]
    for request, melody in zip(requests, tiny_engine.compose_many(requests), strict=True):
        assert melody.pickup == 0 and melody.bars == request.bars
        assert melody.steps == request.bars * bar
        assert "/" not in melody.tokens  # the song's end is never drawn inside the melody
        assert ends_at_bar_line(melody.tokens, melody.layout)
        assert melody.ending in (ENDED_BY_MODEL, ENDED_BY_RULE)
        _assert_ends_on_a_strong_beat_in_the_tonic_triad(melody)


def _assert_ends_on_a_strong_beat_in_the_tonic_triad(melody) -> None:
    last = max(k for k, t in enumerate(melody.tokens) if t.isdigit())
    layout = melody.layout
    assert layout.bar_of(last) == layout.last_bar  # the final note sounds in the last bar …
    assert layout.position_of(last) in layout.meter.cadence_positions  # … from a strong beat …
    assert set(melody.tokens[last + 1 :]) <= {"_"}  # … to the final bar line …
    degree = (int(melody.tokens[last]) - melody.key.tonic.pitchClass) % 12
    assert degree in FINAL_DEGREES[melody.key.mode]  # … on the tonic, its third or its fifth
    if melody.ending == ENDED_BY_MODEL:
        assert degree == 0  # the model may end early only on the tonic


def test_a_given_upbeat_keeps_the_bar_lines_where_a_musician_expects_them(tiny_engine):
    request = MelodyRequest.parse("G4:0.5 C5 C5 D5 meter=3/4 pickup=0.5 bars=8 seed=4")
    melody = tiny_engine.compose(request)
    assert melody.pickup == 2 and melody.steps == 2 + 8 * 12 and melody.bars == 8
    score = melody.to_score()
    measures = list(score.parts[0].getElementsByClass("Measure"))
    assert measures[0].number == 0 and measures[0].duration.quarterLength == 0.5
    assert [m.duration.quarterLength for m in measures[1:]] == [3.0] * 8
    assert measures[1].notes[0].pitch.midi == 72  # the first C5 falls on the first downbeat


def test_an_upbeat_is_heard_from_the_opening_only_when_it_explains_it_clearly(tiny_engine):
    plain = tiny_engine.compose(MelodyRequest.parse("C4 D4 E4 meter=3/4 seed=1"))
    assert plain.pickup == 0  # a plain opening keeps its first note on the downbeat


@pytest.mark.parametrize(
    ("opening", "pickup"),
    [
        ("G4:0.5 C5 C5 D5", 2),  # an eighth-note upbeat
        ("G4:0.5 C5:1.5 D5:0.5 E5 meter=3/4", 2),
        ("C4 D4 E4", 0),
        ("G4 A4 B4:2 D5 key=G", 0),
        ("E4 G4 B4 meter=3/4", 0),
    ],
)
def test_the_shipped_model_hears_a_clear_upbeat_and_invents_none(shipped_engine, opening, pickup):
    melody = shipped_engine.compose(MelodyRequest.parse(f"{opening} bars=4 seed=1"))
    assert melody.pickup == pickup
    assert melody.bars == 4 and melody.steps == pickup + 4 * melody.request.steps_per_bar


def test_steps_gives_exactly_that_many_steps(tiny_engine):
    melodies = tiny_engine.compose_many(
        [MelodyRequest.parse(f"C4 E4 G4 temp=1 seed={s} steps=40") for s in range(10)]
    )
    assert all(m.steps == 40 and "/" not in m.tokens for m in melodies)


@pytest.mark.parametrize(
    ("opening", "label"),
    [
        ("C4 D4", "C"),
        ("G4 E4 C4", "C"),
        ("G4 C5 E5 G5", "C"),  # an upbeat on the dominant, then the tonic triad
        ("A4 C5", "Am"),
        ("D4 F#4 A4", "D"),
        ("E4 G4 B4", "Em"),
        ("Eb4 G4 Bb4", "Eb"),
        ("C#4 E4 G#4", "C#m"),
    ],
)
def test_short_openings_are_read_the_plain_way(opening, label):
    from generator.keys import key_label

    assert key_label(detect_key(MelodyRequest.parse(opening))) == label


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
    request = MelodyRequest.parse("C4").with_options(top_k=1)  # below what users may ask for
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
    cold = MelodyRequest.parse("C4").with_options(temperature=0.1)
    draws = [sample(logits, rng, cold, np.ones(3, bool)) for _ in range(300)]
    assert draws.count(0) > 290


def test_a_strong_repeat_bias_completes_every_bar_repeat_the_model_begins(tiny_model_dir):
    from generator.engine import MelodyEngine
    from generator.training.report.features import full_bars

    engine = MelodyEngine.load(tiny_model_dir)
    engine.repeat_bias = 50.0  # nats: completing a repeat under way becomes certain
    requests = [MelodyRequest.parse(f"C4 E4 G4 C5 bars=8 seed={s}") for s in range(12)]
    checked = 0
    for melody in engine.compose_many(requests):
        bars = full_bars(melody.tokens, melody.layout)
        for index in range(2, len(bars) - 1):  # after the opening bar, before the cadence bar
            before, bar = bars[index - 1], bars[index]
            if bar[0] == before[0] and bar[0] != bars[index - 2][0]:
                assert bar == before
                checked += 1
    assert checked > 0


def test_the_shipped_model_composes_in_the_meter_asked_for(shipped_engine):
    """The notes themselves change with the meter, not only the notation, and fall on its grid."""
    from generator.training.report.features import bars_on_the_grid

    waltzes = shipped_engine.compose_many(
        [MelodyRequest.parse(f"C4 D4 E4 meter=3/4 bars=8 seed={s}") for s in range(20)]
    )
    marches = shipped_engine.compose_many(
        [MelodyRequest.parse(f"C4 D4 E4 meter=4/4 bars=8 seed={s}") for s in range(20)]
    )
    differ = sum(w.tokens[12:48] != m.tokens[12:48] for w, m in zip(waltzes, marches, strict=True))
    assert differ >= 18
    on_grid = np.mean([bars_on_the_grid(w.tokens, w.layout) for w in waltzes])
    assert on_grid >= 0.95


def test_the_cheap_check_refuses_a_seed_no_key_fits_and_passes_one_some_key_fits(shipped_engine):
    low, high = shipped_engine.pitch_range()
    with pytest.raises(RequestError, match="Your notes span more than this model knows"):
        shipped_engine.check(MelodyRequest.parse(f"{low} {high + 7} {high + 7}"))
    with pytest.raises(RequestError, match="is outside the range this model knows"):
        shipped_engine.check(MelodyRequest.parse("C8 D4 key=C"))  # a key given: checked exactly
    for seed in ("C4 D4 E4", f"{high + 1} {high}", f"{low - 1} {low}"):  # fits moved into a key
        shipped_engine.check(MelodyRequest.parse(seed))
