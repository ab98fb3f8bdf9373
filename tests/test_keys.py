import pytest

from generator.keys import key_label, parse_key, shift_to_reference


@pytest.mark.parametrize(
    ("tonic", "mode", "shift"),
    [
        (0, "major", 0),
        (7, "major", 5),
        (5, "major", -5),
        (2, "major", -2),
        (6, "major", -6),
        (9, "minor", 0),
        (4, "minor", 5),
        (2, "minor", -5),
        (11, "minor", -2),
    ],
)
def test_shift_takes_the_smallest_way_to_c_or_a(tonic, mode, shift):
    assert shift_to_reference(tonic, mode) == shift
    assert (tonic + shift) % 12 == (0 if mode == "major" else 9)


@pytest.mark.parametrize(
    ("text", "label", "mode"),
    [
        ("G", "G", "major"),
        ("Em", "Em", "minor"),
        ("f#m", "F#m", "minor"),
        ("Bb", "Bb", "major"),
        ("Eb major", "Eb", "major"),
        ("C minor", "Cm", "minor"),
        ("Dmaj", "D", "major"),
    ],
)
def test_keys_as_users_type_them(text, label, mode):
    parsed = parse_key(text)
    assert key_label(parsed) == label
    assert parsed.mode == mode


@pytest.mark.parametrize("text", ["H", "Xm", "", "C##m", "Gsharp"])
def test_unknown_keys_are_refused(text):
    with pytest.raises(ValueError):
        parse_key(text)
