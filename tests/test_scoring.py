"""Likelihood figures on cases with known answers."""

import math

import numpy as np
import pytest

from generator.training.scoring import Tally
from generator.vocab import Vocabulary

VOCAB = Vocabulary.from_sequences([("60", "62", "64", "67")])  # / r _ 60 62 64 67


def test_uniform_model_scores_log2_of_the_vocabulary():
    tally = Tally(VOCAB)
    targets = np.array([3, 2, 2, 4, 1, 0])  # 60 _ _ 62 r /
    uniform = np.full((len(targets), len(VOCAB)), 1 / len(VOCAB))
    tally.add(uniform, targets, np.ones(len(targets), bool))
    scores = tally.scores(songs=1, skipped=0)
    assert scores.nll_bits_per_step == pytest.approx(math.log2(7))
    assert scores.events == 3  # 60, 62 and the rest; holds and the delimiter are no events
    assert scores.bits_per_event == pytest.approx(6 * math.log2(7) / 3)
    assert scores.pitch_bits_per_onset == pytest.approx(math.log2(4))  # 4 pitch symbols


def test_certain_model_is_perfect_and_masked_steps_do_not_count():
    tally = Tally(VOCAB)
    targets = np.array([3, 2, 5])
    probs = np.eye(len(VOCAB))[targets]
    probs[2] = np.eye(len(VOCAB))[0]  # wrong, but masked out
    tally.add(probs, targets, np.array([True, True, False]))
    scores = tally.scores(1, 0)
    assert scores.nll_bits_per_step == pytest.approx(0, abs=1e-9)
    assert scores.accuracy == scores.non_hold_accuracy == 1.0
    assert scores.steps == 2


def test_pitch_bits_are_conditional_on_an_onset():
    tally = Tally(VOCAB)
    probs = np.array([[0.0, 0.0, 0.5, 0.25, 0.25, 0.0, 0.0]])  # half on hold, half on 60/62
    tally.add(probs, np.array([3]), np.array([True]))
    scores = tally.scores(1, 0)
    assert scores.nll_bits_per_step == pytest.approx(2.0)
    assert scores.pitch_bits_per_onset == pytest.approx(1.0)  # 60 vs 62, even odds
