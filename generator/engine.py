"""Composing: a request's seed → the model, one step at a time → a melody in the seed's key.

The model only knows C major / A minor, so the seed is transposed there, continued, and the result
transposed back. Sampling uses each request's own random generator, so the same model, request and
``seed=`` give the same melody, byte for byte, whether composed alone or in a batch.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from music21 import key as m21key

from generator import encoding
from generator.keys import key_label, shift_to_reference
from generator.model import MODEL_FILE, StepModel
from generator.request import MAX_SEED, MelodyRequest, RequestError
from generator.vocab import Vocabulary

STOPPED_AT_SONG_END = "song end"
STOPPED_AT_LENGTH = "length cap"
MIDI_RANGE = (0, 127)


@dataclass(frozen=True)
class Melody:
    """A composed melody: its steps in the request's key, and how to notate and play it."""

    request: MelodyRequest
    tokens: tuple[str, ...]
    key: m21key.Key
    rng_seed: int
    stopped_by: str
    model_name: str

    @property
    def steps(self) -> int:
        return len(self.tokens)

    @property
    def bars(self) -> float:
        return self.steps / self.request.steps_per_bar

    @property
    def duration_seconds(self) -> float:
        return self.steps * encoding.STEP_QL * 60.0 / self.request.bpm

    @property
    def key_label(self) -> str:
        return key_label(self.key)

    def to_score(self, title: str | None = None):
        return encoding.decode(
            self.tokens,
            meter=self.request.meter,
            bpm=self.request.bpm,
            key=self.key,
            title=title,
        )

    def to_midi(self) -> bytes:
        from music21.midi.translate import streamToMidiFile

        return bytes(streamToMidiFile(self.to_score()).writestr())

    def to_musicxml(self, title: str | None = None) -> bytes:
        from music21.musicxml.m21ToXml import GeneralObjectExporter

        return bytes(GeneralObjectExporter(self.to_score(title)).parse())


@dataclass(frozen=True)
class _Prepared:
    request: MelodyRequest
    key: m21key.Key
    shift: int  # semitones from the request's key into the model's C major / A minor
    prefix: np.ndarray  # delimiter + seed ids, in the model's key
    rng_seed: int


class MelodyEngine:
    """A loaded model ready to compose; load once, call :meth:`compose` from any worker thread."""

    def __init__(self, step_model: StepModel, vocab: Vocabulary, meta: dict, name: str):
        self.step_model = step_model
        self.vocab = vocab
        self.meta = meta
        self.name = name
        self._pitch_ids = np.array([vocab.index[str(p)] for p in vocab.pitches], dtype=np.int64)
        self._pitch_values = np.array(vocab.pitches, dtype=np.int64)

    @classmethod
    def load(cls, model_dir: str | Path) -> MelodyEngine:
        model_dir = Path(model_dir)
        if not (model_dir / MODEL_FILE).exists():
            raise FileNotFoundError(
                f"no model at {model_dir} (expected {MODEL_FILE}, vocab.json and meta.json there)"
            )
        vocab = Vocabulary.load(model_dir / "vocab.json")
        meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
        step_model = StepModel.load(model_dir / MODEL_FILE)
        if step_model.vocab_size != len(vocab):
            raise ValueError(f"{model_dir}: model and vocab.json disagree on the vocabulary size")
        return cls(step_model, vocab, meta, meta.get("name", model_dir.name))

    @property
    def version(self) -> str:
        return str(self.meta.get("created", "unknown"))

    def pitch_range(self, shift: int = 0) -> tuple[int, int]:
        low, high = self.vocab.pitch_range
        return low - shift, high - shift

    def prepare(self, request: MelodyRequest) -> _Prepared:
        """Check the request against this model (range, key) and put its seed in the model's key."""
        key = request.music21_key() or _detect_key(request)
        shift = shift_to_reference(key.tonic.pitchClass, key.mode)
        known = self.vocab.index
        low, high = self.pitch_range(shift)
        ids = [self.vocab.delimiter_id]
        for token in request.seed_tokens():
            symbol = token if not token.isdigit() else str(int(token) + shift)
            if symbol not in known:
                raise RequestError(
                    f"{_pitch_name(int(token))} is outside the range this model knows: "
                    f"{_pitch_name(low)} to {_pitch_name(high)} in {key_label(key)}."
                )
            ids.append(known[symbol])
        rng_seed = request.rng_seed if request.rng_seed is not None else secrets.randbelow(MAX_SEED)
        return _Prepared(request, key, shift, np.array(ids, np.int64), rng_seed)

    def compose(self, request: MelodyRequest) -> Melody:
        return self.compose_many([request])[0]

    def compose_many(
        self, requests: Sequence[MelodyRequest], *, stop_at_song_end: bool = True
    ) -> list[Melody]:
        """Compose several melodies as one batch: one matrix product per step for all of them.

        With ``stop_at_song_end=False`` the song delimiter is never drawn, so every melody runs to
        its length cap (benchmarks use this to time a fixed number of steps).
        """
        jobs = [self.prepare(r) for r in requests]
        if not jobs:
            return []
        rngs = [np.random.default_rng(job.rng_seed) for job in jobs]
        allowed = [self._allowed_mask(job.shift) for job in jobs]
        if not stop_at_song_end:
            for mask in allowed:
                mask[self.vocab.delimiter_id] = False
        outputs: list[list[int]] = [list(job.prefix[1:]) for job in jobs]
        stopped = [""] * len(jobs)
        state = self.step_model.initial_state(len(jobs))
        inputs = np.array([job.prefix[0] for job in jobs], np.int64)
        longest = max(job.request.total_steps for job in jobs)
        delimiter = self.vocab.delimiter_id
        for t in range(longest + 1):
            if all(stopped):
                break
            logits = self.step_model.step(inputs, state)
            for row, job in enumerate(jobs):
                if stopped[row]:
                    inputs[row] = delimiter
                    continue
                if t + 1 < len(job.prefix):  # still reading the seed: teacher-forced
                    inputs[row] = job.prefix[t + 1]
                    continue
                choice = sample(logits[row], rngs[row], job.request, allowed[row])
                if choice == delimiter:
                    stopped[row] = STOPPED_AT_SONG_END
                else:
                    outputs[row].append(choice)
                    if len(outputs[row]) >= job.request.total_steps:
                        stopped[row] = STOPPED_AT_LENGTH
                inputs[row] = choice
        return [
            self._finish(job, outputs[row], stopped[row] or STOPPED_AT_LENGTH)
            for row, job in enumerate(jobs)
        ]

    def _allowed_mask(self, shift: int) -> np.ndarray:
        """Symbols the sampler may pick: pitches that stay valid MIDI notes once transposed back."""
        mask = np.ones(len(self.vocab), bool)
        back = self._pitch_values - shift
        mask[self._pitch_ids[(back < MIDI_RANGE[0]) | (back > MIDI_RANGE[1])]] = False
        return mask

    def _finish(self, job: _Prepared, ids: list[int], stopped_by: str) -> Melody:
        symbols = self.vocab.decode(ids)
        tokens = tuple(s if not s.isdigit() else str(int(s) - job.shift) for s in symbols)
        return Melody(job.request, tokens, job.key, job.rng_seed, stopped_by, self.name)


def sample(
    logits: np.ndarray, rng: np.random.Generator, request: MelodyRequest, allowed: np.ndarray
) -> int:
    """Draw the next symbol: temperature, then top-k and top-p, over the allowed symbols only."""
    scaled = np.where(allowed, logits.astype(np.float64) / request.temperature, -np.inf)
    probs = np.exp(scaled - scaled.max())
    if request.top_k is not None and request.top_k < len(probs):
        cutoff = np.partition(probs, -request.top_k)[-request.top_k]
        probs[probs < cutoff] = 0.0
    if request.top_p is not None and request.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = int(np.searchsorted(cumulative, request.top_p * cumulative[-1])) + 1
        probs[order[keep:]] = 0.0
    cumulative = np.cumsum(probs)
    drawn = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(drawn, len(probs) - 1)


def _detect_key(request: MelodyRequest) -> m21key.Key:
    """The seed's key by music21's analysis, told apart from its relative key by the seed itself.

    A few notes rarely separate a major key from its relative minor (C D E analyses as A minor),
    so when the seed starts or ends on the other one's tonic, that one is taken. C major when the
    seed is too short to tell at all.
    """
    from music21 import note as m21note
    from music21 import stream as m21stream

    pitched = [n.pitch for n in request.seed_notes if n.pitch is not None]
    if len({p % 12 for p in pitched}) == 1:  # one pitch: call it the tonic of a major key
        return m21key.Key(m21note.Note(pitched[0]).pitch.name)
    melody = m21stream.Stream([m21note.Note(p) for p in pitched])
    try:
        detected = melody.analyze("key")
    except Exception:
        return m21key.Key("C")
    detected = m21key.Key(detected.tonic.name, detected.mode)
    relative = detected.relative
    anchors = {pitched[0] % 12, pitched[-1] % 12}
    if detected.tonic.pitchClass not in anchors and relative.tonic.pitchClass in anchors:
        return m21key.Key(relative.tonic.name, relative.mode)
    return detected


def _pitch_name(midi: int) -> str:
    from music21 import pitch as m21pitch

    return m21pitch.Pitch(midi=midi).nameWithOctave.replace("-", "b")
