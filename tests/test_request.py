import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.request import (
    MAX_SEED_NOTES,
    MelodyRequest,
    RequestError,
    SeedNote,
    parse_note_name,
    parse_request,
)


def test_notes_options_and_defaults():
    request = parse_request(
        "C4 D4:2 r:0.5 Bb3 F#4 60 temp=0.7 bars=4 key=g bpm=90 meter=3/4 seed=42"
    )
    assert request.seed_notes == (
        SeedNote(60, 4, "C4"),
        SeedNote(62, 8, "D4:2"),
        SeedNote(None, 2, "r:0.5"),
        SeedNote(58, 4, "Bb3"),
        SeedNote(66, 4, "F#4"),
        SeedNote(60, 4, "60"),
    )
    assert (request.temperature, request.bars, request.key, request.bpm) == (0.7, 4, "G", 90)
    assert (request.meter, request.rng_seed, request.steps_per_bar) == ("3/4", 42, 12)
    assert request.total_steps == 48
    defaults = parse_request("E4")
    assert (defaults.temperature, defaults.meter, defaults.bpm, defaults.key) == (
        1.0,
        "4/4",
        100,
        None,
    )
    assert defaults.total_steps == 8 * 16


def test_raw_step_form():
    request = parse_request("60 _ _ _ 62 _ r _ temp=0.5")
    assert [(n.pitch, n.steps) for n in request.seed_notes] == [(60, 4), (62, 2), (None, 2)]
    assert request.seed_tokens() == ["60", "_", "_", "_", "62", "_", "r", "_"]


def test_describe_parses_back_to_the_same_request():
    request = parse_request(
        "C4 D4:2 r:0.25 E4 temp=0.7 steps=100 key=Em meter=6/8 seed=5 topk=3 topp=0.9"
    )
    assert parse_request(request.describe()) == request


@pytest.mark.parametrize(
    ("name", "midi"),
    [
        ("C4", 60),
        ("c4", 60),
        ("F#4", 66),
        ("Bb3", 58),
        ("Eb5", 75),
        ("B#3", 60),
        ("Cb4", 59),
        ("E♭4", 63),
        ("A0", 21),
        ("127", 127),
    ],
)
def test_note_names(name, midi):
    assert parse_note_name(name) == midi


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("X4 D4", "don't know the note 'X4'"),
        ("C4 ?", "don't know the note '?'"),
        ("", "Give me a few notes"),
        ("temp=0.5", "Give me a few notes"),
        ("r r:2", "at least one note"),
        (" ".join(["C4:0.25"] * (MAX_SEED_NOTES + 1)) + " bars=64", "64 at most"),
        ("C4 temp=0", "at least 0.5"),
        ("C4 temp=5e-324", "at least 0.5"),
        ("C4 topk=1", "at least 2"),
        ("C4 meter=5/4", "folk meter the model knows: 2/4, 3/4, 4/4, 3/8, 6/8, 2/2"),
        ("C4 meter=16/2", "folk meter"),
        ("C4 pickup=1.3", "multiple of 0.25"),
        ("C4 meter=3/4 pickup=3", "shorter than a bar"),
        ("C4 temp=2.5", "at most 2"),
        ("C4 temp=hot", "needs a number"),
        ("C4 bars=0", "at least 1"),
        ("C4 bars=65", "at most 64"),
        ("C4 steps=5000", "at most 1024"),
        ("C4 bars=4 steps=64", "not both"),
        ("C4 bars=2.5", "whole number"),
        ("C4 volume=11", "Unknown option 'volume='"),
        ("C4 key=H", "key= must be a key"),
        ("C4 meter=3/5", "folk meter"),
        ("C4 bpm=5", "at least 30"),
        ("C4 seed=-1", "at least 0"),
        ("C4 topp=1.5", "at most 1"),
        ("C4 temp=", "needs a value"),
        ("C4 temp=1 temp=2", "given twice"),
        ("C4:abc", "duration I can't read"),
        ("C4:0.3", "multiple of 0.25"),
        ("200", "0 to 127"),
        ("60 _ x", "can't be mixed"),
        ("_ 60", "can't start with _"),
        ("C4:4 D4:4 bars=2", "already fills 2 bars"),
    ],
)
def test_bad_requests_say_what_to_fix(text, fragment):
    with pytest.raises(RequestError) as caught:
        parse_request(text)
    message = str(caught.value)
    assert fragment in message
    assert "Try:" in message  # every error shows a form that works


def test_request_error_example_parses():
    with pytest.raises(RequestError) as caught:
        parse_request("nonsense")
    MelodyRequest.parse(caught.value.example)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_either_parses_or_raises_request_error(text):
    try:
        request = parse_request(text)
    except RequestError as error:
        assert str(error)
    else:
        assert request.seed_notes


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["C", "D", "E", "F#", "Bb", "r"]),
            st.integers(3, 5),
            st.sampled_from(["", ":0.5", ":1", ":2"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_generated_valid_requests_parse(notes):
    text = " ".join(n if n == "r" else f"{n}{o}" for n, o, _ in notes)
    text = " ".join(f"{item}{d}" for item, (_, _, d) in zip(text.split(), notes, strict=True))
    if all(n == "r" for n, _, _ in notes):
        text += " C4"
    request = parse_request(text + " bars=16")
    assert len(request.seed_notes) >= len(notes)


def test_pickup_and_meter_set_the_exact_length():
    request = parse_request("G4:0.5 C5 C5 D5 meter=3/4 pickup=0.5 bars=8")
    assert (request.pickup, request.steps_per_bar) == (2, 12)
    assert request.total_steps == 2 + 8 * 12 and request.length_in_bars == 8
    assert "pickup=0.5" in request.describe() and "meter=3/4" in request.describe()
    assert parse_request(request.describe()) == request
    unheard = parse_request("C4 D4 E4 meter=6/8")
    assert unheard.pickup is None and unheard.total_steps_with(3) == 3 + 8 * 12
    assert parse_request("C4 meter=2/2").steps_per_bar == 16  # composed on the 4/4 grid


def test_a_decimal_comma_reads_as_a_decimal_point():
    request = parse_request("C4 D4 temp=0,7 pickup=0,5")
    assert request.temperature == 0.7 and "temp=0.7" in request.describe()
    assert "pickup=0.5" in request.describe()
    assert [n.pitch for n in parse_request("60,62, 64 temp=1").seed_notes] == [60, 62, 64]
    assert parse_request("C4").with_option_text("temp=1,5").temperature == 1.5


def test_seed_new_asks_for_a_fresh_seed_and_with_seed_chooses_one_to_keep():
    stored = parse_request("C4 D4 seed=7")
    fresh = stored.with_option_text("seed=new")
    assert fresh.rng_seed is None and fresh.seed_notes == stored.seed_notes
    chosen = fresh.with_seed()
    assert chosen.rng_seed is not None and chosen.with_seed() == chosen
    assert f"seed={chosen.rng_seed}" in chosen.describe()


def test_german_h_is_b_and_a_name_without_octave_is_in_octave_4():
    assert [n.pitch for n in parse_request("H4 B4 h3 Hb4").seed_notes] == [71, 71, 59, 70]
    assert [n.pitch for n in parse_request("c d e:2 F# bb").seed_notes] == [60, 62, 64, 66, 70]
    assert parse_request("c d e:2").describe().startswith("C4 D4 E4:2 ")


def test_inst_takes_an_instrument_by_name_or_program_and_keeps_it():
    assert parse_request("C4 inst=Flute").instrument == 73
    assert parse_request("C4 inst=110").describe().endswith(" inst=fiddle")
    assert parse_request("C4 inst=3").describe().endswith(" inst=3")
    assert parse_request("C4").instrument is None
    with pytest.raises(RequestError, match="inst= takes an instrument"):
        parse_request("C4 inst=kazoo")
