"""What a worker does for a melody, called in this process as a worker would call it."""

from __future__ import annotations

import io

import mido
import pytest

from bot.jobs import WorkerSetup, compose, play, setup
from generator.render import RenderSettings, audio_available
from generator.request import parse_request


@pytest.fixture(scope="module")
def worker(tiny_model_dir):
    setup(WorkerSetup(tiny_model_dir, RenderSettings(gm_program=0), audio=audio_available()[0]))


def _program(midi: bytes) -> int:
    (change,) = [
        m
        for t in mido.MidiFile(file=io.BytesIO(midi)).tracks
        for m in t
        if m.type == "program_change"
    ]
    return change.program


def _brightness(mp3: bytes) -> float:
    """The spectral centroid in Hz: a flute's tone sits far from a piano's."""
    import numpy as np
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(mp3))
    mono = samples.mean(axis=1) if samples.ndim > 1 else samples
    spectrum = np.abs(np.fft.rfft(mono))
    frequencies = np.fft.rfftfreq(len(mono), 1 / rate)
    return float((spectrum * frequencies).sum() / spectrum.sum())


def test_inst_sets_the_midi_files_instrument(worker):
    piano, flute = compose(
        [parse_request(f"C4 D4 E4 bars=2 seed=1{i}") for i in ("", " inst=flute")]
    )
    assert _program(piano.midi) == 0 and _program(flute.midi) == 73
    assert piano.melody.tokens == flute.melody.tokens  # the same melody, another instrument


@pytest.mark.skipif(not audio_available()[0], reason="needs FluidSynth and a soundfont")
def test_inst_plays_the_preview_on_that_instrument(worker):
    (piano,) = compose([parse_request("C4 D4 E4 bars=2 seed=1")])
    (flute,) = compose([parse_request("C4 D4 E4 bars=2 seed=1 inst=flute")])
    (as_piano,) = play([(piano.melody, "mp3")])
    (as_flute,) = play([(flute.melody, "mp3")])
    (piano_again,) = play([(piano.melody, "mp3")])
    same = abs(_brightness(as_piano) - _brightness(piano_again))
    other = abs(_brightness(as_flute) - _brightness(as_piano))
    assert other > 10 * max(same, 1.0)
