"""Audio previews: the melody's notes → FluidSynth in this process → loudness → MP3.

MP3 because both platforms play it inline: Telegram shows ``sendAudio`` MP3s with a player,
Discord previews MP3 attachments. The notes are played straight from the melody (no MIDI file
parsed back) by FluidSynth's library with a General MIDI soundfont that is loaded once per
process; loudness is set in NumPy to −16 LUFS with true peaks under −1.5 dBTP
(:mod:`generator.render.loudness`), the end fades out, and LAME encodes the MP3.

Before, each preview started the ``fluidsynth`` program (loading the 148 MB soundfont every time)
and ffmpeg with its ``loudnorm`` filter: about 0.9 s of CPU for 8 bars. BENCHMARKS.md has today's
figure.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from generator import encoding
from generator.render import loudness
from generator.render.errors import RenderError
from generator.render.settings import RenderSettings

AUDIO_SUFFIX = ".mp3"
AUDIO_MIME = "audio/mpeg"
SAMPLE_RATE = 44_100
RELEASE_S = 0.8  # let the last note ring this long before the file ends
FADE_S = 0.6
VELOCITY = 90
MP3_KBPS = 128
MP3_QUALITY = 7  # LAME's 2 (best) … 7 (fast): at 128 kbit/s a solo instrument loses nothing heard
# FluidSynth works in blocks of 64 samples and starts a note at the next block: notes are put on
# that grid (1.5 ms, inaudible), so a melody keeps its timing however the previous one ended.
BLOCK = 64
FLUSH_BLOCKS = 64  # silence rendered at most this many times 64 blocks to let the reverb die


def _on_grid(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE / BLOCK) * BLOCK


@dataclass(frozen=True)
class Performance:
    """What to play: (start, length) in seconds and a MIDI pitch for each note, and how long
    the music lasts (a final rest counts)."""

    notes: tuple[tuple[float, float, int], ...]
    duration_s: float

    @classmethod
    def of_tokens(cls, tokens: Sequence[str], bpm: float) -> Performance:
        """A melody's steps at its tempo."""
        seconds_per_step = encoding.STEP_QL * 60.0 / bpm
        notes, step = [], 0
        for event in encoding.tokens_to_events(tokens):
            if event.pitch is not None:
                notes.append((step * seconds_per_step, event.steps * seconds_per_step, event.pitch))
            step += event.steps
        return cls(tuple(notes), step * seconds_per_step)

    @classmethod
    def of_midi(cls, midi: bytes) -> Performance:
        """A MIDI file's notes (for music that is not a melody of ours, e.g. a corpus song)."""
        from music21 import converter

        score = converter.parseData(midi, format="midi")
        notes = []
        end = 0.0
        for entry in score.flatten().secondsMap:
            element = entry["element"]
            start, length = entry["offsetSeconds"], entry["durationSeconds"]
            end = max(end, start + length)
            for pitch in getattr(element, "pitches", ()):
                notes.append((start, length, int(pitch.midi)))
        return cls(tuple(notes), end)


def audio_available(settings: RenderSettings | None = None) -> tuple[bool, str]:
    """Whether previews can be made here, and if not, why (logged once at start-up)."""
    settings = settings or RenderSettings()
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth loads libfluidsynth when imported)
    except (ImportError, OSError):
        return False, "FluidSynth's library is not installed (apt-get install fluidsynth)"
    try:
        import lameenc  # noqa: F401
    except ImportError:
        return False, "the MP3 encoder is not installed (pip install lameenc)"
    if settings.soundfont_path() is None:
        return False, "no General MIDI soundfont found (apt-get install fluid-soundfont-gm)"
    return True, "FluidSynth and LAME are ready"


class _Synthesizer:
    """One FluidSynth with its soundfont loaded, shared by every thread of the process: a
    preview takes tens of milliseconds of it, loading the soundfont a third of a second and
    148 MB, so it is loaded once and used in turn."""

    _instances: ClassVar[dict[Path, _Synthesizer]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, soundfont: Path):
        import fluidsynth

        self.lock = threading.Lock()
        self.synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), gain=0.5)
        self.soundfont_id = self.synth.sfload(str(soundfont))
        if self.soundfont_id < 0:
            raise RenderError("no audio preview: the soundfont could not be read.")

    @classmethod
    def for_soundfont(cls, soundfont: Path) -> _Synthesizer:
        with cls._instances_lock:
            if soundfont not in cls._instances:
                cls._instances[soundfont] = cls(soundfont)
            return cls._instances[soundfont]

    def play(self, performance: Performance, program: int) -> np.ndarray:
        """The performance as mono float samples, the last note left to ring for RELEASE_S."""
        changes = sorted(
            [(_on_grid(start), 1, pitch) for start, _, pitch in performance.notes]
            + [(_on_grid(start + length), 0, pitch) for start, length, pitch in performance.notes]
        )  # at the same moment a note ends (0) before the next one starts (1)
        end = _on_grid(performance.duration_s + RELEASE_S)
        chunks = []
        with self.lock:
            self._silence()
            self.synth.program_select(0, self.soundfont_id, 0, program)
            now = 0
            for at, starts, pitch in changes:
                if at > now:
                    chunks.append(self.synth.get_samples(at - now))
                    now = at
                if starts:
                    self.synth.noteon(0, pitch, VELOCITY)
                else:
                    self.synth.noteoff(0, pitch)
            if end > now:
                chunks.append(self.synth.get_samples(end - now))
        stereo = np.concatenate(chunks).reshape(-1, 2).astype(np.float32)
        return stereo.mean(axis=1) / 32768.0

    def _silence(self) -> None:
        """Stop every voice and let the reverb of the previous melody die away, so none of it
        is heard at the start of this one."""
        self.synth.system_reset()
        for _ in range(FLUSH_BLOCKS):
            if np.abs(self.synth.get_samples(BLOCK * 64)).max(initial=0) <= 1:
                return


def _fade_out(samples: np.ndarray) -> np.ndarray:
    length = min(len(samples), int(FADE_S * SAMPLE_RATE))
    if length:
        samples[-length:] *= np.linspace(1.0, 0.0, length, dtype=np.float32)
    return samples


def encode_mp3(samples: np.ndarray) -> bytes:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(MP3_KBPS)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(1)
    encoder.set_quality(MP3_QUALITY)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return bytes(encoder.encode(pcm) + encoder.flush())


def render_audio(music: Performance | bytes, settings: RenderSettings | None = None) -> bytes:
    """An MP3 preview of a performance (or of a MIDI file's notes); raises RenderError when the
    tools are missing."""
    settings = settings or RenderSettings()
    ready, reason = audio_available(settings)
    if not ready:
        raise RenderError(f"no audio preview: {reason}.")
    performance = music if isinstance(music, Performance) else Performance.of_midi(music)
    synthesizer = _Synthesizer.for_soundfont(settings.soundfont_path())
    samples = synthesizer.play(performance, settings.gm_program)
    return encode_mp3(_fade_out(loudness.normalise(samples, SAMPLE_RATE)))
