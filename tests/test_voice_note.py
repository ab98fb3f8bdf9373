"""The OGG/Opus voice note beside the MP3, and the loudness stage both go through.

The voice note is read back by tools that are not ours: ffprobe names its codec, libsndfile
(``soundfile``) decodes it and checks every Ogg page's CRC, ffmpeg's meter reads its loudness.
"""

import io
import json
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from generator.render import (
    AUDIO_SUFFIX,
    VOICE_MIME,
    VOICE_SUFFIX,
    RenderError,
    RenderSettings,
    audio_available,
    loudness,
    render_audio,
)
from generator.render import audio as audio_module
from generator.render.audio import RELEASE_S, VOICE_SAMPLE_RATE, Performance
from tests.conftest import IN_CI
from tests.test_render import _ebur128, melody_tokens, midi

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def require_voice() -> None:
    for ready, reason in (
        audio_available(audio_format="voice"),
        (shutil.which("ffprobe") is not None, "ffprobe is not installed"),
    ):
        if not ready:
            if IN_CI:
                pytest.fail(reason)
            pytest.skip(reason)


def _ffprobe(data: bytes, suffix: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        report = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,channels,sample_rate:format=duration,format_name",
                "-of",
                "json",
                handle.name,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return json.loads(report)


def _decoded(voice: bytes) -> tuple[np.ndarray, int]:
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(voice), dtype="float32")
    return samples, rate


def _ogg_pages(data: bytes) -> list[dict]:
    """The pages of an Ogg stream, parsed by hand."""
    pages, at = [], 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS", f"no page at byte {at}"
        flags, granule, serial, sequence, crc, count = struct.unpack_from("<xxxxxBqIIIB", data, at)
        lacing = data[at + 27 : at + 27 + count]
        end = at + 27 + count + sum(lacing)
        pages.append(
            {
                "flags": flags,
                "granule": granule,
                "serial": serial,
                "sequence": sequence,
                "crc": crc,
                "bytes": data[at:end],
                "body": data[at + 27 + count : end],
            }
        )
        at = end
    return pages


def _reference_ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 the slow, plain way: polynomial 0x04C11DB7, most significant bit first,
    starting from 0, over the page with its CRC field zeroed."""
    page = page[:22] + b"\0\0\0\0" + page[26:]
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def test_the_voice_note_is_ogg_with_one_mono_opus_stream():
    require_voice()
    voice = render_audio(Performance.of_tokens(melody_tokens(4), 120), None, "voice")
    assert voice[:4] == b"OggS"
    assert voice[28:36] == b"OpusHead"  # the first page's one packet: the Opus header
    assert voice[37] == 1  # … for one channel
    assert struct.unpack_from("<I", voice, 40)[0] == VOICE_SAMPLE_RATE  # made at this rate
    assert b"OpusTags" in voice[:200]
    probe = _ffprobe(voice, VOICE_SUFFIX)
    assert probe["format"]["format_name"] == "ogg"
    (stream,) = probe["streams"]
    assert stream["codec_name"] == "opus"
    assert stream["channels"] == 1
    assert int(stream["sample_rate"]) == 48_000  # what every Opus stream decodes to
    assert VOICE_SUFFIX == ".ogg" and VOICE_MIME == "audio/ogg"


@pytest.mark.parametrize(("bars", "bpm", "from_midi"), [(4, 120, False), (8, 90, True)])
def test_the_voice_note_lasts_as_long_as_the_melody(bars, bpm, from_midi):
    require_voice()
    music = midi(bars, bpm) if from_midi else Performance.of_tokens(melody_tokens(bars), bpm)
    voice = render_audio(music, RenderSettings(gm_program=73), "voice")
    expected = bars * 4 * 60 / bpm + RELEASE_S
    assert abs(float(_ffprobe(voice, VOICE_SUFFIX)["format"]["duration"]) - expected) < 0.15
    samples, rate = _decoded(voice)
    assert rate == VOICE_SAMPLE_RATE
    # The encoder's padding is cut off: what is decoded is the music to within a 64-sample
    # step of FluidSynth's (the notes are put on that grid).
    assert abs(len(samples) - expected * rate) <= 64


def test_every_page_is_sound_and_the_last_one_ends_the_music():
    require_voice()
    voice = render_audio(Performance.of_tokens(melody_tokens(2), 120), None, "voice")
    pages = _ogg_pages(voice)
    assert [p["sequence"] for p in pages] == list(range(len(pages)))
    assert len({p["serial"] for p in pages}) == 1
    assert pages[0]["flags"] == 0x02 and pages[-1]["flags"] == 0x04  # first, last
    assert all(p["flags"] == 0 for p in pages[1:-1])
    for page in pages:
        assert page["crc"] == _reference_ogg_crc(page["bytes"]), page["sequence"]
    assert pages[1]["body"].startswith(b"OpusTags")
    granules = [p["granule"] for p in pages[2:]]
    assert granules == sorted(granules) and granules[0] > 0
    preskip = struct.unpack_from("<H", pages[0]["body"], 10)[0]
    samples, rate = _decoded(voice)
    assert granules[-1] - preskip == len(samples) * 48_000 // rate  # Ogg counts at 48 kHz


def test_voice_notes_are_at_the_target_loudness_and_do_not_clip(tiny_engine):
    require_voice()
    from generator.request import parse_request

    for seed in range(6):
        melody = tiny_engine.compose(parse_request(f"C4 D4 E4 G4 bars=4 seed={seed}"))
        voice = render_audio(melody.performance(), None, "voice")
        samples, rate = _decoded(voice)
        ours = loudness.integrated_loudness(samples, rate)
        assert abs(ours - loudness.TARGET_LUFS) <= 1.0, (seed, ours)
        assert np.abs(samples).max() < 1.0, seed
        integrated, peak = _ebur128(voice, VOICE_SUFFIX)
        assert abs(integrated - loudness.TARGET_LUFS) <= 1.0, (seed, integrated)
        assert peak <= loudness.CEILING_DBTP, (seed, peak)  # Opus adds a little: headroom


def test_the_mp3_is_still_a_44_1_khz_mp3_as_long_and_as_loud_as_the_voice_note():
    require_voice()
    performance = Performance.of_tokens(melody_tokens(4), 100)
    mp3 = render_audio(performance)
    voice = render_audio(performance, RenderSettings(), audio_format="voice")
    probe = _ffprobe(mp3, AUDIO_SUFFIX)
    (stream,) = probe["streams"]
    assert stream["codec_name"] == "mp3" and stream["channels"] == 1
    assert int(stream["sample_rate"]) == audio_module.SAMPLE_RATE
    expected = performance.duration_s + RELEASE_S
    assert abs(float(probe["format"]["duration"]) - expected) < 0.15
    mp3_loudness, _ = _ebur128(mp3, AUDIO_SUFFIX)
    voice_loudness, _ = _ebur128(voice, VOICE_SUFFIX)
    assert abs(mp3_loudness - loudness.TARGET_LUFS) <= 1.0
    assert abs(mp3_loudness - voice_loudness) <= 1.0
    assert len(voice) < 0.6 * len(mp3)  # the point of a voice note: a much smaller file


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="audio_format"):
        render_audio(Performance(((0.0, 0.5, 60),), 0.5), None, "flac")


def test_a_missing_opus_library_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(audio_module, "_libopus", lambda: None)
    ready, reason = audio_available(audio_format="voice")
    assert not ready and "Opus" in reason
    with pytest.raises(RenderError, match="no audio preview"):
        render_audio(Performance(((0.0, 0.5, 60),), 0.5), None, "voice")


def test_the_image_and_the_setup_script_install_libopus():
    for path in ("Dockerfile", "scripts/install-system-deps"):
        assert "libopus0" in (PROJECT_ROOT / path).read_text(), path


def _reference_k_weighted(signal: np.ndarray, rate: float) -> np.ndarray:
    """The two biquads run sample by sample, in float64."""
    out = np.asarray(signal, dtype=np.float64)
    for b, a in loudness._k_sections(rate):
        x1 = x2 = y1 = y2 = 0.0
        result = np.empty_like(out)
        for n, x in enumerate(out.tolist()):
            y = b[0] * x + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
            x2, x1, y2, y1 = x1, x, y1, y
            result[n] = y
        out = result
    return out


@pytest.mark.parametrize("rate", [44_100, 48_000, 8_000])
def test_the_k_weighting_on_blocks_is_the_recursive_filter(rate):
    rng = np.random.default_rng(rate)
    # noise, a low tone (the high pass's slow poles) and a length that is no multiple of 64
    t = np.arange(rate // 2 + 37) / rate
    signal = (0.1 * rng.standard_normal(len(t)) + 0.5 * np.sin(2 * np.pi * 50 * t)).astype(
        np.float32
    )
    ours = loudness.k_weighted(signal, rate)
    reference = _reference_k_weighted(signal, rate)
    assert ours.dtype == np.float32 and len(ours) == len(signal)
    assert np.abs(ours - reference).max() < 1e-4 * np.abs(reference).max()


def _reference_block_peaks(signal: np.ndarray, block: int) -> np.ndarray:
    """BS.1770's 4× oversampling the plain way: each phase of the interpolator convolved."""
    peaks = np.abs(np.stack([np.convolve(signal, p, mode="same") for p in loudness._PHASES]))
    peaks = peaks.max(axis=0)
    count = -(-len(peaks) // block)
    return np.pad(peaks, (0, count * block - len(peaks))).reshape(count, block).max(axis=1)


@pytest.mark.parametrize("block", [441, 480, 100, 7])
def test_the_true_peaks_are_the_interpolator_s(block):
    rng = np.random.default_rng(block)
    signal = rng.standard_normal(20_011).astype(np.float32)
    np.testing.assert_allclose(
        loudness._block_peaks(signal, block), _reference_block_peaks(signal, block), atol=1e-5
    )


def test_normalise_keeps_its_promises_when_the_limiter_works_hard():
    rate = 44_100
    rng = np.random.default_rng(7)
    t = np.arange(rate * 8) / rate
    # a quiet tone with sharp clicks: the gain to −16 LUFS would put the clicks far above 0 dBFS
    signal = 0.02 * np.sin(2 * np.pi * 330 * t)
    signal[rng.choice(len(t), 40, replace=False)] += 0.5
    level = loudness.normalise(signal.astype(np.float32), rate)
    assert abs(loudness.integrated_loudness(level, rate) - loudness.TARGET_LUFS) <= 1.0
    reference_peak = 20 * np.log10(_reference_block_peaks(level, 1024).max())
    assert reference_peak <= loudness.CEILING_DBTP + 0.01
    assert abs(loudness.true_peak_db(level) - reference_peak) < 0.01
