import math

import numpy as np
import pytest

from generator.training.corpus import Song
from generator.training.ngram import KneserNey
from generator.vocab import Vocabulary

SONGS = [Song(f"s{i}", tuple(["60", "_", "62", "_", "64", "_", "60", "_"])) for i in range(20)]
VOCAB = Vocabulary.from_sequences([("60", "62", "64", "65", "r", "_")])


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distributions_sum_to_one(order):
    model = KneserNey(VOCAB, order).fit(SONGS)
    for history in ([0, 0, 0, 0], [0, 3, 2, 4], [5, 5, 5, 5], [1]):
        probs = model.distribution(history)
        assert probs.sum() == pytest.approx(1.0)
        assert (probs > 0).all()  # smoothing leaves no symbol impossible


def test_learns_a_repeated_tune_and_scores_every_step():
    model = KneserNey(VOCAB, 4).fit(SONGS)  # three steps of context tell "60 _" apart
    scores = model.score(SONGS[:1])
    assert scores.steps == 9  # eight steps and the closing delimiter, like the LSTM's scoring
    assert scores.accuracy == 1.0
    assert scores.nll_bits_per_step < 0.5
    unseen = model.score([Song("x", tuple(["65", "r", "65", "r", "65", "r"]))])
    assert unseen.nll_bits_per_step > 2


def test_unigram_order_one_is_close_to_frequencies():
    model = KneserNey(VOCAB, 1).fit(SONGS)
    probs = model.distribution([])
    hold = VOCAB.hold_id
    assert probs[hold] == pytest.approx(max(probs))
    assert np.isclose(probs.sum(), 1.0)
    uniform_bits = math.log2(len(VOCAB))
    assert model.score(SONGS).nll_bits_per_step < uniform_bits
