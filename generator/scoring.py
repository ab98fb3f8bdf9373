"""Likelihood of whole songs under the model, with the LSTM state carried from each song's start.

This is how the model is used when it composes (from a delimiter, one step after another), so it
is the honest measure of how well it predicts folk melodies: no sliding windows, no truncated
context. Accuracy is also given for non-hold steps only, because always predicting ``_`` already
scores about 70 % overall.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from generator.corpus import Song
from generator.dataset import frame_song
from generator.model import StepModel, softmax
from generator.vocab import Vocabulary


@dataclass(frozen=True)
class SongScores:
    songs: int
    steps: int
    nll_nats_per_step: float
    nll_bits_per_step: float
    accuracy: float
    non_hold_accuracy: float
    skipped_songs: int = 0  # songs with symbols the model does not know (pitches outside its range)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def known_songs(vocab: Vocabulary, songs: Sequence[Song]) -> tuple[list[Song], int]:
    symbols = set(vocab.symbols)
    kept = [s for s in songs if symbols.issuperset(s.tokens)]
    return kept, len(songs) - len(kept)


def score_songs(
    model: StepModel, vocab: Vocabulary, songs: Sequence[Song], batch_size: int = 256
) -> SongScores:
    """Sum −log p over every step of every song (and its closing delimiter), batched by length."""
    usable, skipped = known_songs(vocab, songs)
    framed = sorted((frame_song(vocab, s) for s in usable), key=len)
    total_nll = 0.0
    total_steps = correct = non_hold_steps = non_hold_correct = 0
    hold = vocab.hold_id
    for begin in range(0, len(framed), batch_size):
        batch = framed[begin : begin + batch_size]
        longest = max(len(f) for f in batch)
        ids = np.zeros((len(batch), longest), np.int32)
        valid = np.zeros((len(batch), longest), bool)
        for row, f in enumerate(batch):
            ids[row, : len(f)] = f
            valid[row, : len(f)] = True
        state = model.initial_state(len(batch))
        for t in range(longest - 1):
            probs = softmax(model.step(ids[:, t], state))
            target = ids[:, t + 1]
            mask = valid[:, t + 1]
            p_target = probs[np.arange(len(batch)), target]
            total_nll -= float(np.log(np.maximum(p_target[mask], 1e-12)).sum())
            hits = (probs.argmax(axis=1) == target) & mask
            total_steps += int(mask.sum())
            correct += int(hits.sum())
            is_event = mask & (target != hold)
            non_hold_steps += int(is_event.sum())
            non_hold_correct += int((hits & is_event).sum())
    nats = total_nll / max(total_steps, 1)
    return SongScores(
        songs=len(usable),
        steps=total_steps,
        nll_nats_per_step=nats,
        nll_bits_per_step=nats / math.log(2),
        accuracy=correct / max(total_steps, 1),
        non_hold_accuracy=non_hold_correct / max(non_hold_steps, 1),
        skipped_songs=skipped,
    )
