import random

from generator.vocab import Vocabulary


def test_ids_follow_a_rule_not_the_order_of_the_data():
    songs = [["64", "_", "60", "r"], ["72", "_", "_", "55"], ["60", "/"]]
    first = Vocabulary.from_sequences(songs)
    for _ in range(5):
        shuffled = [random.sample(s, len(s)) for s in random.sample(songs, len(songs))]
        assert Vocabulary.from_sequences(shuffled) == first
    assert first.symbols == ("/", "r", "_", "55", "60", "64", "72")
    assert (first.delimiter_id, first.rest_id, first.hold_id) == (0, 1, 2)
    assert first.pitch_range == (55, 72)


def test_saved_file_is_identical_byte_for_byte(tmp_path):
    vocab = Vocabulary.from_sequences([["67", "_", "r", "60"]])
    vocab.save(tmp_path / "a.json")
    Vocabulary.from_sequences([["60", "r", "67", "_"]]).save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert Vocabulary.load(tmp_path / "a.json") == vocab


def test_encode_decode():
    vocab = Vocabulary.from_sequences([["60", "62", "_"]])
    ids = vocab.encode(["60", "_", "62", "/"])
    assert vocab.decode(ids) == ["60", "_", "62", "/"]
