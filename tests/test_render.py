"""Score pictures and audio through the real tools (MuseScore, verovio, FluidSynth, ffmpeg)."""

import io
import os
import re
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from music21 import converter, key
from music21.musicxml.m21ToXml import GeneralObjectExporter
from PIL import Image

from generator import encoding
from generator.midi_file import melody_midi
from generator.render import (
    RenderError,
    RenderSettings,
    audio_available,
    available_png_renderers,
    loudness,
    prepare_musicxml,
    render_audio,
    render_png,
)
from generator.render.audio import RELEASE_S, Performance
from tests.conftest import IN_CI

SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def melody_tokens(bars: int) -> list[str]:
    """Quarter notes up and down the C-major scale, four to a bar."""
    pitches = (SCALE + SCALE[::-1]) * (bars // 4 + 1)
    return encoding.events_to_tokens(encoding.Event(p, 4) for p in pitches[: bars * 4])


def musicxml(bars: int, title: str = "#42 · C4 D4 E4 · temp 0.7") -> bytes:
    score = encoding.decode(melody_tokens(bars), meter="4/4", bpm=96, key=key.Key("G"), title=title)
    return bytes(GeneralObjectExporter(score).parse())


def midi(bars: int, bpm: int = 120) -> bytes:
    return melody_midi(melody_tokens(bars), bpm=bpm, meter="4/4", key_sharps=0, minor=False)


def require(renderer: str) -> None:
    if renderer not in available_png_renderers():
        if IN_CI:
            pytest.fail(f"{renderer} must be installed in CI")
        pytest.skip(f"{renderer} is not installed here")


def require_audio() -> None:
    ready, reason = audio_available()
    if not ready:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


def dark_share(png: bytes) -> float:
    image = Image.open(io.BytesIO(png)).convert("L")
    histogram = image.histogram()
    return sum(histogram[:128]) / (image.width * image.height)


@pytest.mark.parametrize("renderer", ["musescore", "verovio"])
def test_score_png_is_phone_sized_trimmed_and_not_blank(renderer):
    require(renderer)
    short = render_png(musicxml(4), RenderSettings(renderer=renderer))
    long = render_png(musicxml(32), RenderSettings(renderer=renderer))
    for png in (short, long):
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        assert 1000 <= image.width <= 1600
        assert image.getpixel((0, 0)) in (255, (255, 255, 255))  # white background
        assert 0.01 < dark_share(png) < 0.4
        assert len(png) < 2_000_000  # far below Discord's and Telegram's upload limits
    short_height = Image.open(io.BytesIO(short)).height
    long_height = Image.open(io.BytesIO(long)).height
    assert long_height > 2.5 * short_height  # 32 bars break into several systems
    assert short_height < 0.6 * 1400  # trimmed: no A4 page of white


def test_auto_prefers_musescore_when_present():
    require("musescore")
    auto = render_png(musicxml(4))
    assert auto == render_png(musicxml(4), RenderSettings(renderer="musescore"))


def test_score_data_carries_clef_key_meter_tempo_and_title():
    prepared = prepare_musicxml(musicxml(4)).decode()
    assert "<sign>G</sign>" in prepared and "<line>2</line>" in prepared
    assert "<fifths>1</fifths>" in prepared
    assert "<beats>4</beats>" in prepared and "<beat-type>4</beat-type>" in prepared
    assert "<per-minute>96</per-minute>" in prepared
    assert "#42 · C4 D4 E4 · temp 0.7" in prepared


def _verovio_clefs(musicxml: bytes) -> tuple[list[str], int]:
    """The clef glyphs verovio draws for a score (SMuFL code points, E050 the G clef) and the
    number of systems it breaks the score into."""
    import verovio

    toolkit = verovio.toolkit()
    assert toolkit.loadData(musicxml.decode())
    svg = "".join(toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1))
    glyphs = re.findall(r'class="clef"[^>]*>\s*<use xlink:href="#([0-9A-F]{4})', svg)
    return glyphs, svg.count('class="system"')


def test_a_score_without_clef_gets_a_treble_clef(esac_dir):
    """music21 writes no <clef> for ESAC songs parsed from kern; verovio then drew none."""
    song = converter.parse(esac_dir / "erk" / "deut0567.krn")
    raw = bytes(GeneralObjectExporter(song).parse())
    assert b"<clef>" not in raw
    prepared = prepare_musicxml(raw)
    assert prepared.count(b"<clef>") == 1
    attributes = ET.fromstring(prepared).find("part/measure/attributes")
    clef = attributes.find("clef")
    assert (clef.findtext("sign"), clef.findtext("line")) == ("G", "2")  # treble: G on line 2
    tags = [child.tag for child in attributes]
    assert tags.index("time") < tags.index("clef")  # schema order kept
    require("verovio")
    assert _verovio_clefs(raw)[0] == []  # what music21 wrote alone: no clef drawn
    glyphs, systems = _verovio_clefs(prepared)
    assert systems >= 1 and glyphs == ["E050"] * systems  # a G clef opens every system
    png = render_png(raw, RenderSettings(renderer="verovio"))
    assert Image.open(io.BytesIO(png)).width >= 1000 and 0.01 < dark_share(png) < 0.4


def test_bad_input_and_timeouts_are_render_errors():
    with pytest.raises(RenderError, match="not valid MusicXML"):
        render_png(b"<not xml")
    require("musescore")
    with pytest.raises(RenderError, match="took longer than"):
        render_png(musicxml(32), RenderSettings(renderer="musescore", timeout_s=0.01))


def test_concurrent_renders_leave_no_temp_folders():
    renderers = available_png_renderers()
    if not renderers:
        pytest.skip("no renderer installed")
    before = set(Path(tempfile.gettempdir()).glob("melodybot-*"))
    with ThreadPoolExecutor(4) as pool:
        pngs = list(pool.map(lambda bars: render_png(musicxml(bars)), [4, 8, 12, 16]))
    assert len({len(p) for p in pngs}) == 4
    assert set(Path(tempfile.gettempdir()).glob("melodybot-*")) == before


def _probe(mp3: bytes) -> tuple[float, float, float]:
    """Duration, peak and mean level (dBFS) of an MP3, decoded by ffmpeg."""
    with tempfile.NamedTemporaryFile(suffix=".mp3") as handle:
        handle.write(mp3)
        handle.flush()
        duration = float(
            subprocess.run(
                [
                    "ffprobe",
                    "-v",
                    "error",
                    "-show_entries",
                    "format=duration",
                    "-of",
                    "csv=p=0",
                    handle.name,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        levels = subprocess.run(
            ["ffmpeg", "-hide_banner", "-i", handle.name, "-af", "volumedetect", "-f", "null", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
    peak = float(levels.split("max_volume: ")[1].split(" dB")[0])
    mean = float(levels.split("mean_volume: ")[1].split(" dB")[0])
    return duration, peak, mean


@pytest.mark.parametrize(("bars", "bpm", "from_midi"), [(4, 120, False), (8, 90, True)])
def test_audio_matches_the_melody_length_and_does_not_clip(bars, bpm, from_midi):
    require_audio()
    music = midi(bars, bpm) if from_midi else Performance.of_tokens(melody_tokens(bars), bpm)
    mp3 = render_audio(music, RenderSettings(gm_program=73))
    duration, peak, mean = _probe(mp3)
    expected = bars * 4 * 60 / bpm + RELEASE_S
    assert abs(duration - expected) < 0.15
    assert peak < 0.0
    assert mean > -35.0  # audible, not silence


def test_the_instrument_setting_changes_the_sound_and_nothing_else_does():
    require_audio()
    import numpy as np

    from generator.render.audio import _Synthesizer

    synthesizer = _Synthesizer.for_soundfont(RenderSettings().soundfont_path())
    music = Performance.of_tokens(melody_tokens(2), 120)
    piano = synthesizer.play(music, 0)
    other = synthesizer.play(Performance.of_tokens(melody_tokens(4)[::-1], 80), 40)
    again = synthesizer.play(music, 0)  # after another melody: nothing of it is left

    def rms(samples) -> float:
        return float(np.sqrt(np.mean(samples * samples)))

    # The reverb's delay lines are modulated, so a second take differs in its fine structure
    # only (about 5 % RMS); a leftover note or another instrument differs entirely.
    assert len(again) == len(piano) and rms(again - piano) < 0.15 * rms(piano)
    flute = synthesizer.play(music, 73)
    assert rms(flute - piano) > 0.5 * rms(piano) and len(other) > len(piano)


def _ebur128(audio: bytes, suffix: str) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's own meter reads them."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(audio)
        handle.flush()
        meter = ["-af", "ebur128=peak=true", "-f", "null", "-"]
        report = subprocess.run(
            ["ffmpeg", "-hide_banner", "-nostats", "-i", handle.name, *meter],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
    summary = report[report.rindex("Summary:") :]
    integrated = float(summary.split("I:")[1].split("LUFS")[0])
    peak = float(summary.split("Peak:")[1].split("dBFS")[0])
    return integrated, peak


def test_the_loudness_meter_reads_as_ffmpeg_s(tmp_path):
    import wave

    import numpy as np

    rng = np.random.default_rng(3)
    rate = 44_100
    t = np.arange(rate * 6) / rate
    # a tone, a noise burst and a quiet stretch, so both gates have work to do
    signal = np.concatenate(
        [0.3 * np.sin(2 * np.pi * 440 * t), 0.05 * rng.standard_normal(rate * 3), 0.001 * t]
    ).astype(np.float32)
    path = tmp_path / "probe.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((signal * 32767).astype("<i2").tobytes())
    ours = loudness.integrated_loudness(signal, rate)
    theirs, _ = _ebur128(path.read_bytes(), ".wav")
    assert abs(ours - theirs) < 0.15


def test_previews_of_twenty_melodies_are_at_the_target_loudness(tiny_engine):
    require_audio()
    from generator.request import parse_request

    for seed in range(20):
        melody = tiny_engine.compose(parse_request(f"C4 D4 E4 G4 bars=4 seed={seed}"))
        integrated, peak = _ebur128(render_audio(melody.performance()), ".mp3")
        assert abs(integrated - loudness.TARGET_LUFS) <= 1.0, (seed, integrated)
        assert peak <= loudness.CEILING_DBTP + 0.5, (seed, peak)  # MP3 adds a little


def test_missing_audio_tools_are_a_clear_error(tmp_path):
    settings = RenderSettings(soundfont=tmp_path / "missing.sf2")
    ready, reason = audio_available(settings)
    assert not ready and "soundfont" in reason
    with pytest.raises(RenderError, match="no audio preview"):
        render_audio(midi(2), settings)


def _fake_musescore(folder: Path, body: str) -> None:
    """A MuseScore that misbehaves, first on PATH: the fault, not a stand-in for a renderer."""
    script = folder / "mscore3"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)


def test_a_failing_musescore_falls_back_to_verovio_and_shows_no_paths(
    tmp_path, monkeypatch, caplog
):
    require("verovio")
    _fake_musescore(tmp_path, 'echo "fatal: cannot open /srv/secret/score.musicxml" >&2\nexit 3\n')
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with caplog.at_level("WARNING", logger="melodybot.render"):
        png = render_png(musicxml(4))
    assert Image.open(io.BytesIO(png)).width >= 1000  # verovio drew it
    assert "/srv/secret" in caplog.text  # the operator sees what MuseScore said …
    with pytest.raises(RenderError) as failed:
        render_png(musicxml(4), RenderSettings(renderer="musescore"))
    assert str(failed.value) == "MuseScore failed."  # … a chat user sees no path


def test_a_hung_renderer_is_stopped_with_everything_it_started(tmp_path, monkeypatch):
    require("verovio")
    child_pid = tmp_path / "child.pid"
    _fake_musescore(tmp_path, f"sleep 300 &\necho $! > {child_pid}\nsleep 300\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    settings = RenderSettings(renderer="musescore", timeout_s=1)
    with pytest.raises(RenderError, match="took longer than 1 s"):
        render_png(musicxml(4), settings)
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)  # the helper it forked went with it


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its entry waits for its parent
