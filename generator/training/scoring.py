"""Likelihood of whole songs under the model, with the LSTM state carried from each song's start.

This is how the model is used when it composes (from a delimiter, one step after another), so it
is the honest measure of how well it predicts folk melodies: no sliding windows, no truncated
context. Besides bits per 16th step it reports:

- **non-hold accuracy**: accuracy on steps that are not ``_``; always predicting ``_`` already
  scores about 70 % overall, so overall accuracy alone flatters any model;
- **bits per event**: the whole song's information (every step, holds and the closing delimiter
  included) divided by its number of events (note and rest onsets), the unit of IDyOM-style work;
- **pitch bits per onset**: −log2 P(pitch | a note starts here), i.e. the probability of the right
  pitch renormalised over the pitch symbols, averaged over the steps where a note starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from generator.model import StepModel, softmax
from generator.training.corpus import Song
from generator.training.dataset import frame_context, frame_song
from generator.vocab import Vocabulary

FLOOR = 1e-12


@dataclass(frozen=True)
class SongScores:
    songs: int
    steps: int
    nll_nats_per_step: float
    nll_bits_per_step: float
    accuracy: float
    non_hold_accuracy: float
    bits_per_event: float = 0.0
    pitch_bits_per_onset: float = 0.0
    events: int = 0
    skipped_songs: int = 0  # songs with symbols the model does not know (pitches outside its range)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class Tally:
    """Sums every figure over predicted steps; shared by the LSTM and the n-gram scorers."""

    def __init__(self, vocab: Vocabulary):
        self.hold = vocab.hold_id
        self.delimiter = vocab.delimiter_id
        self.pitch_ids = np.array([vocab.index[str(p)] for p in vocab.pitches])
        self.is_pitch = np.zeros(len(vocab), bool)
        self.is_pitch[self.pitch_ids] = True
        self.nll = self.pitch_nll = 0.0
        self.steps = self.correct = self.events = self.onsets = 0
        self.not_hold = self.not_hold_correct = 0

    def add(self, probs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> None:
        """One step for a batch: ``probs`` (B, V), ``targets`` (B,), ``mask`` marks real steps."""
        rows = np.arange(len(targets))
        p_target = probs[rows, targets]
        self.nll -= float(np.log(np.maximum(p_target[mask], FLOOR)).sum())
        hits = (probs.argmax(axis=1) == targets) & mask
        self.steps += int(mask.sum())
        self.correct += int(hits.sum())
        is_event = mask & (targets != self.hold) & (targets != self.delimiter)
        not_hold = mask & (targets != self.hold)
        self.events += int(is_event.sum())
        self.not_hold += int(not_hold.sum())
        self.not_hold_correct += int((hits & not_hold).sum())
        onset = mask & self.is_pitch[targets]
        if onset.any():
            pitch_mass = probs[onset][:, self.pitch_ids].sum(axis=1)
            conditional = p_target[onset] / np.maximum(pitch_mass, FLOOR)
            self.pitch_nll -= float(np.log(np.maximum(conditional, FLOOR)).sum())
            self.onsets += int(onset.sum())

    def scores(self, songs: int, skipped: int) -> SongScores:
        nats = self.nll / max(self.steps, 1)
        return SongScores(
            songs=songs,
            steps=self.steps,
            nll_nats_per_step=nats,
            nll_bits_per_step=nats / math.log(2),
            accuracy=self.correct / max(self.steps, 1),
            non_hold_accuracy=self.not_hold_correct / max(self.not_hold, 1),
            bits_per_event=self.nll / math.log(2) / max(self.events, 1),
            pitch_bits_per_onset=self.pitch_nll / math.log(2) / max(self.onsets, 1),
            events=self.events,
            skipped_songs=skipped,
        )


def known_songs(vocab: Vocabulary, songs: Sequence[Song]) -> tuple[list[Song], int]:
    symbols = set(vocab.symbols)
    kept = [s for s in songs if symbols.issuperset(s.tokens)]
    return kept, len(songs) - len(kept)


def score_songs(
    model: StepModel, vocab: Vocabulary, songs: Sequence[Song], batch_size: int = 256
) -> SongScores:
    """Score every step of every song (and its closing delimiter), batched by length."""
    usable, skipped = known_songs(vocab, songs)
    framed = sorted(
        ((frame_song(vocab, s), frame_context(vocab, s)) for s in usable), key=lambda p: len(p[0])
    )
    tally = Tally(vocab)
    for begin in range(0, len(framed), batch_size):
        batch = framed[begin : begin + batch_size]
        longest = max(len(f) for f, _ in batch)
        ids = np.zeros((len(batch), longest), np.int32)
        context = np.zeros((len(batch), longest, batch[0][1].shape[1]), np.int32)
        valid = np.zeros((len(batch), longest), bool)
        for row, (f, c) in enumerate(batch):
            ids[row, : len(f)] = f
            context[row, : len(f)] = c
            valid[row, : len(f)] = True
        state = model.initial_state(len(batch))
        for t in range(longest - 1):
            probs = softmax(model.step(ids[:, t], context[:, t], state))
            tally.add(probs, ids[:, t + 1], valid[:, t + 1])
    return tally.scores(len(usable), skipped)
