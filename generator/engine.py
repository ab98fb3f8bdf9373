"""Composing: a request's opening notes → the model, one step at a time → a melody in their key.

The model only knows C major / A minor, so the opening is transposed there, continued, and the
result transposed back. The melody has exactly the length asked for: the model is told at every
step where it stands in the bar and how many bars are left, the song's end can't be drawn before
the last bar line, and in the last bar the final note falls on a strong beat and is held to the
bar line (a cadence): the tonic, where the model chooses it on a strong beat of the last bar, or
else a note of the tonic triad on the last strong beat, the tonic favoured. (Real songs end on
the tonic 83 % of the time and on its third or fifth nearly all the rest; offered the triad
there as it is, the model ends on the tonic 69 % of the time, because its own endings often fall
on the weak beat after; with the tonic favoured by 2.5 nats, 85 %, measured on training songs'
openings.) Sampling uses each request's own random generator, so the same model, request and
``seed=`` give the same melody, byte for byte, alone or in a batch.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from music21 import key as m21key

from generator import encoding, form, keys
from generator.keys import REFERENCE_PITCH_CLASS, key_label, shift_to_reference
from generator.midi_file import melody_midi
from generator.model import MODEL_FILE, StepModel, softmax
from generator.request import MAX_SEED, MelodyRequest, RequestError
from generator.vocab import Vocabulary

MIDI_RANGE = (0, 127)
# How the last note came about: the model chose the tonic on a strong beat of the last bar, or
# the last strong beat came without one and took a note of the tonic triad.
ENDED_BY_MODEL = "cadence chosen by the model"
ENDED_BY_RULE = "cadence on the last strong beat"
ENDED_OPEN = "no strong beat left for a cadence"
# Nats added to the step that completes a bar repeat already under way (see
# form.FormTracker.repeat_in_progress); 0 leaves repetition to the model alone.
# 3.5 nats brings 16-bar melodies from training songs' openings near those songs' own share of
# repeated bars (bench/bench_repeat_bias.py; BENCHMARKS.md).
REPEAT_BIAS = 3.5
# The notes a melody may end on when the last strong beat comes (semitones above the tonic): the
# tonic triad, the tonic favoured by FINAL_TONIC_BIAS nats over what the model gives it.
FINAL_DEGREES = {"major": (0, 4, 7), "minor": (0, 3, 7)}
FINAL_TONIC_BIAS = 2.5  # 85 % of melodies end on the tonic, real songs 83 % (bench_final_note)
# An upbeat heard in the opening must explain it better than none by this many nats (chosen on
# training songs' openings, bench/bench_pickup.py: no upbeat is invented for a plain opening).
PICKUP_MARGIN_NATS = 5.0


@dataclass(frozen=True)
class Melody:
    """A composed melody: its steps in the request's key, its bar layout and how it ended."""

    request: MelodyRequest
    tokens: tuple[str, ...]
    key: m21key.Key
    rng_seed: int
    pickup: int
    ending: str

    def __reduce__(self):
        # Sent between processes by its key's name: a pickled music21 Key takes milliseconds to
        # rebuild, the cached one none.
        return _melody_of, (
            self.request,
            self.tokens,
            key_label(self.key),
            self.rng_seed,
            self.pickup,
            self.ending,
        )

    @property
    def steps(self) -> int:
        return len(self.tokens)

    @property
    def bars(self) -> float:
        """Whole bars after the upbeat (the upbeat is not counted, as musicians count)."""
        return (self.steps - self.pickup) / self.request.steps_per_bar

    @property
    def layout(self) -> form.Layout:
        """The bar grid the melody was composed on (``2/2`` reads as the ``4/4`` grid)."""
        return form.Layout(form.model_meter(self.request.meter), self.pickup, self.steps)

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
            pickup=self.pickup,
        )

    def performance(self):
        """Its notes in seconds, for the audio preview (no MIDI file in between)."""
        from generator.render.audio import Performance

        return Performance.of_tokens(self.tokens, self.request.bpm)

    def to_midi(self, title: str | None = None, *, program: int | None = None) -> bytes:
        """A Standard MIDI File of the melody, written from its steps (no music21 score), for
        the instrument asked for (``program``, else the request's, else the piano)."""
        if program is None:
            program = self.request.instrument or 0
        return melody_midi(
            self.tokens,
            bpm=self.request.bpm,
            meter=self.request.meter,
            key_sharps=self.key.sharps,
            minor=self.key.mode == "minor",
            program=program,
            title=title,
        )

    def to_musicxml(self, title: str | None = None) -> bytes:
        from music21.musicxml.m21ToXml import GeneralObjectExporter

        return bytes(GeneralObjectExporter(self.to_score(title)).parse())


def _melody_of(request, tokens, key_name, rng_seed, pickup, ending) -> Melody:
    return Melody(request, tokens, keys.parse_key(key_name), rng_seed, pickup, ending)


@dataclass(frozen=True)
class _Prepared:
    request: MelodyRequest
    key: m21key.Key
    shift: int  # semitones from the request's key into the model's C major / A minor
    seed_ids: np.ndarray  # the opening's step ids, in the model's key
    rng_seed: int
    meter: form.Meter
    pickup: int | None  # None until heard from the opening

    def layout(self, pickup: int) -> form.Layout:
        return form.Layout(self.meter, pickup, self.request.total_steps_with(pickup))


class MelodyEngine:
    """A loaded model ready to compose; load once per process, then compose from any thread."""

    def __init__(
        self,
        step_model: StepModel,
        vocab: Vocabulary,
        meta: dict,
        name: str,
        *,
        repeat_bias: float = REPEAT_BIAS,
        final_tonic_bias: float = FINAL_TONIC_BIAS,
    ):
        self.step_model = step_model
        self.repeat_bias = repeat_bias
        self.final_tonic_bias = final_tonic_bias
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

    def check(self, request: MelodyRequest) -> None:
        """The cheap half of :meth:`prepare`, for the bot to run before it stores anything: a
        seed that fits this model in no key at all is refused here. Without ``key=`` the key is
        heard from the seed (music21's key analysis, the costly part) only in :meth:`prepare`,
        in a worker; a seed that fits some key but not the one heard is refused there."""
        if request.key:
            key = request.music21_key()
            assert key is not None
            self._seed_ids(request, key)
            return
        known = self.vocab.index
        pitches = {int(t) for t in request.seed_tokens() if t.isdigit()}
        if any(all(str(p + shift) in known for p in pitches) for shift in range(-6, 6)):
            return
        low, high = self.pitch_range()
        outside = max(pitches, key=lambda p: max(low - p, p - high))
        raise RequestError(
            f"Your notes span more than this model knows ({_pitch_name(low)} to "
            f"{_pitch_name(high)} in C, moved with the key): {_pitch_name(outside)} does not fit."
        )

    def prepare(self, request: MelodyRequest) -> _Prepared:
        """Check the request against this model (range, key) and put the opening in its key.

        No model steps, but the key analysis of a seed without ``key=`` is costly: the bot runs
        it in a worker, with :meth:`check` before it on the event loop.
        """
        key = request.music21_key() or detect_key(request)
        shift, ids = self._seed_ids(request, key)
        rng_seed = request.rng_seed if request.rng_seed is not None else secrets.randbelow(MAX_SEED)
        meter = form.model_meter(request.meter)
        return _Prepared(
            request, key, shift, np.array(ids, np.int64), rng_seed, meter, request.pickup
        )

    def _seed_ids(self, request: MelodyRequest, key) -> tuple[int, list[int]]:
        """The seed moved into the model's key and read as vocabulary ids, or the RequestError
        that names the first note this model cannot play in ``key``."""
        shift = shift_to_reference(key.tonic.pitchClass, key.mode)
        known = self.vocab.index
        low, high = self.pitch_range(shift)
        ids = []
        for token in request.seed_tokens():
            symbol = token if not token.isdigit() else str(int(token) + shift)
            if symbol not in known:
                raise RequestError(
                    f"{_pitch_name(int(token))} is outside the range this model knows: "
                    f"{_pitch_name(low)} to {_pitch_name(high)} in {key_label(key)}."
                )
            ids.append(known[symbol])
        return shift, ids

    def compose(self, request: MelodyRequest) -> Melody:
        return self.compose_many([request])[0]

    def compose_all(
        self, requests: Sequence[MelodyRequest], *, batch_size: int = 50, progress: str = ""
    ) -> list[Melody]:
        """Many melodies (a report's, a benchmark's) in batches, so rows that finish early do not
        keep stepping for the longest melody of hundreds; ``progress`` names a progress bar."""
        from tqdm import tqdm

        starts = range(0, len(requests), batch_size)
        melodies: list[Melody] = []
        for begin in tqdm(starts, desc=progress, disable=not progress):
            melodies += self.compose_many(requests[begin : begin + batch_size])
        return melodies

    def compose_many(self, requests: Sequence[MelodyRequest]) -> list[Melody]:
        """Compose several melodies as one batch: one matrix product per step for all of them."""
        jobs = [self.prepare(r) for r in requests]
        pickups = [job.pickup if job.pickup is not None else self.hear_pickup(job) for job in jobs]
        return self._sample([job.layout(p) for job, p in zip(jobs, pickups, strict=True)], jobs)

    def hear_pickup(self, job: _Prepared, margin: float = PICKUP_MARGIN_NATS) -> int:
        """The upbeat that makes the opening most likely to the model, or none.

        Every note onset within the first bar is a candidate bar line. Among them the one the
        model and the training songs' upbeat lengths (in this meter) find likeliest wins, but only
        if the model finds the opening more likely with it than with no upbeat by ``margin``
        nats: a plain opening (``C4 D4 E4``, ``G4 A4 B4:2 D5``) keeps its first note on the
        downbeat, a clear one (``G4:0.5 C5 C5 D5``) gets its upbeat.
        """
        candidates, log_likelihood = self.pickup_likelihoods(job)
        if len(candidates) == 1:
            return 0
        prior = np.array([self._pickup_log_prior(job.meter.name, p) for p in candidates])
        best = 1 + int(np.argmax((log_likelihood + prior)[1:]))
        if log_likelihood[best] - log_likelihood[0] < margin:
            return 0
        return candidates[best]

    def _pickup_log_prior(self, meter: str, pickup: int) -> float:
        """log P(upbeat length | meter) among the training songs (add-one smoothed); 0 for models
        whose metadata does not record them."""
        counts = self.meta.get("form", {}).get("pickups_in_training", {}).get(meter)
        if not counts:
            return 0.0
        bar = form.METER_BY_NAME[meter].steps_per_bar
        total = sum(counts.values()) + bar
        return float(np.log((counts.get(str(pickup), 0) + 1) / total))

    def pickup_likelihoods(self, job: _Prepared) -> tuple[list[int], np.ndarray]:
        """Candidate upbeats (0 first) and the opening's log-likelihood (nats) under each."""
        bar = job.meter.steps_per_bar
        onsets = [k for k, i in enumerate(job.seed_ids) if i != self.vocab.hold_id]
        candidates = [0] + [k for k in onsets if 0 < k < bar]
        layouts = [job.layout(p) for p in candidates]
        trackers = [form.FormTracker(layout, self.vocab.delimiter_id) for layout in layouts]
        state = self.step_model.initial_state(len(candidates))
        inputs = np.full(len(candidates), self.vocab.delimiter_id, np.int64)
        log_likelihood = np.zeros(len(candidates))
        history = list(job.seed_ids)
        for k, target in enumerate(history):
            context = np.array([t.context(k, history) for t in trackers], np.int64)
            probs = softmax(self.step_model.step(inputs, context, state))
            log_likelihood += np.log(np.maximum(probs[:, target], 1e-12))
            inputs[:] = target
        return candidates, log_likelihood

    def _sample(self, layouts: list[form.Layout], jobs: list[_Prepared]) -> list[Melody]:
        if not jobs:
            return []
        vocab = self.vocab
        rngs = [np.random.default_rng(job.rng_seed) for job in jobs]
        allowed = [self._allowed_mask(job.shift) for job in jobs]
        tonic_masks = [
            self._degree_mask(job.key.mode, (0,)) & mask
            for job, mask in zip(jobs, allowed, strict=True)
        ]
        final_masks = [
            self._degree_mask(job.key.mode, FINAL_DEGREES[job.key.mode]) & mask
            for job, mask in zip(jobs, allowed, strict=True)
        ]
        cadence_steps = [layout.final_bar_cadence_steps() for layout in layouts]
        trackers = [form.FormTracker(layout, vocab.delimiter_id) for layout in layouts]
        histories: list[list[int]] = [list(job.seed_ids) for job in jobs]
        endings = [""] * len(jobs)
        state = self.step_model.initial_state(len(jobs))
        inputs = np.full(len(jobs), vocab.delimiter_id, np.int64)
        context = np.zeros((len(jobs), len(form.CONTEXT_COLUMNS)), np.int64)
        longest = max(layout.length for layout in layouts)
        for k in range(longest):
            for row, tracker in enumerate(trackers):
                if k < layouts[row].length:
                    context[row] = tracker.context(k, histories[row])
            logits = self.step_model.step(inputs, context, state)
            for row, job in enumerate(jobs):
                history = histories[row]
                if k >= layouts[row].length:
                    continue  # finished: its row keeps stepping with the batch, unread
                if k < len(history):  # still reading the opening: teacher-forced
                    inputs[row] = history[k]
                    continue
                if self.repeat_bias:
                    repeat = trackers[row].repeat_in_progress(k, history)
                    if repeat is not None:  # in nats of what is sampled, whatever the temperature
                        logits[row, repeat] += self.repeat_bias * job.request.temperature
                choice, endings[row] = self._next(
                    logits[row],
                    rngs[row],
                    job,
                    allowed[row],
                    tonic_masks[row],
                    final_masks[row],
                    k,
                    cadence_steps[row],
                    endings[row],
                )
                history.append(choice)
                inputs[row] = choice
        return [
            self._finish(job, histories[row], layouts[row], endings[row] or ENDED_OPEN)
            for row, job in enumerate(jobs)
        ]

    def _next(
        self,
        logits: np.ndarray,
        rng: np.random.Generator,
        job: _Prepared,
        allowed: np.ndarray,
        tonic: np.ndarray,
        final: np.ndarray,
        k: int,
        cadence_steps: list[int],
        ending: str,
    ) -> tuple[int, str]:
        """One step of one melody, with the cadence rules of the last bar applied."""
        if ending:  # the final note sounds: hold it to the end
            return self.vocab.hold_id, ending
        if k in cadence_steps:
            if k == cadence_steps[-1]:  # the last strong beat: the final note comes now
                favoured = logits + self.final_tonic_bias * job.request.temperature * tonic
                return sample(favoured, rng, job.request, final), ENDED_BY_RULE
            choice = sample(logits, rng, job.request, allowed)
            return choice, ENDED_BY_MODEL if tonic[choice] else ""
        return sample(logits, rng, job.request, allowed), ""

    def _allowed_mask(self, shift: int) -> np.ndarray:
        """Symbols the sampler may pick before the end: never the song's end (the length is
        fixed), and only pitches that stay valid MIDI notes once transposed back."""
        mask = np.ones(len(self.vocab), bool)
        mask[self.vocab.delimiter_id] = False
        back = self._pitch_values - shift
        mask[self._pitch_ids[(back < MIDI_RANGE[0]) | (back > MIDI_RANGE[1])]] = False
        return mask

    def _degree_mask(self, mode: str, degrees: Sequence[int]) -> np.ndarray:
        """Pitches that lie ``degrees`` semitones above the tonic (which is C in major and A in
        minor, as the model sees every key)."""
        mask = np.zeros(len(self.vocab), bool)
        tonic = REFERENCE_PITCH_CLASS["minor" if mode == "minor" else "major"]
        wanted = np.isin((self._pitch_values - tonic) % 12, list(degrees))
        mask[self._pitch_ids[wanted]] = True
        return mask

    def _finish(self, job: _Prepared, ids: list[int], layout: form.Layout, ending: str) -> Melody:
        symbols = self.vocab.decode(ids)
        tokens = tuple(s if not s.isdigit() else str(int(s) - job.shift) for s in symbols)
        return Melody(job.request, tokens, job.key, job.rng_seed, layout.pickup, ending)


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


def detect_key(request: MelodyRequest) -> m21key.Key:
    """The opening's key (see :func:`generator.keys.detect_key`)."""
    return keys.detect_key((n.pitch, n.steps) for n in request.seed_notes)


def _pitch_name(midi: int) -> str:
    from music21 import pitch as m21pitch

    return m21pitch.Pitch(midi=midi).nameWithOctave.replace("-", "b")
