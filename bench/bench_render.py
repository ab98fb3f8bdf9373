"""Median render time of a 16-bar melody: MuseScore PNG, verovio PNG, MP3 preview, voice note.

The previews are timed stage by stage (FluidSynth in-process, loudness, LAME or libopus); where the
``fluidsynth`` and ``ffmpeg`` programs are installed, beside the way it was made before (the
FluidSynth program writing a WAV, ffmpeg's loudnorm filter and its MP3 encoder), same melody,
same run.

Beside them: MuseScore pictures of eight 8-bar melodies from the shipped model, drawn one by one
(one MuseScore start each) and as batches of 1, 4 and 8 (one MuseScore start per batch), in ms
per picture.

python -m bench.bench_render --help
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.common import median_ms, report, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs per backend")
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    args = parser.parse_args()

    from music21 import key
    from music21.midi.translate import streamToMidiFile
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from generator import encoding
    from generator.render import (
        RenderSettings,
        audio_available,
        available_png_renderers,
        render_audio,
        render_png,
        render_pngs,
    )

    scale = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62]
    events = [encoding.Event(scale[i % len(scale)], 2 if i % 3 else 4) for i in range(200)]
    tokens = encoding.events_to_tokens(events)[: args.bars * 16]
    score = encoding.decode(tokens, bpm=100, key=key.Key("D"), title="#1 · bench")
    xml = bytes(GeneralObjectExporter(score).parse())
    midi = bytes(streamToMidiFile(score).writestr())

    rows = [("backend", f"{args.bars}-bar melody, median", "runs")]
    payload: dict[str, object] = {"bench": "render", "bars": args.bars}
    for renderer in ("musescore", "verovio"):
        if renderer not in available_png_renderers():
            rows.append((f"{renderer} PNG", "not installed", "0"))
            continue
        settings = RenderSettings(renderer=renderer)
        times = timed(lambda s=settings: render_png(xml, s), args.repeats)
        rows.append((f"{renderer} PNG", f"{median_ms(times):,.0f} ms", str(args.repeats)))
        payload[f"{renderer}_ms"] = round(median_ms(times), 1)
    if "musescore" in available_png_renderers():
        from generator.engine import MelodyEngine
        from generator.paths import default_model_dir
        from generator.request import parse_request

        engine = MelodyEngine.load(args.model or default_model_dir())
        requests = [parse_request(f"C4 D4 E4 G4 bars=8 seed={seed}") for seed in range(8)]
        xmls = [m.to_musicxml(f"#{i} · bench") for i, m in enumerate(engine.compose_all(requests))]
        settings = RenderSettings(renderer="musescore")
        ways = {"one by one": lambda: [render_png(x, settings) for x in xmls]}
        for size in (1, 4, 8):
            ways[f"batches of {size}"] = lambda n=size: [
                render_pngs(xmls[i : i + n], settings) for i in range(0, len(xmls), n)
            ]
        for way, action in ways.items():
            per_picture = median_ms(timed(action, args.repeats)) / len(xmls)
            rows.append(
                (
                    f"musescore PNG, {way}",
                    f"{per_picture:,.0f} ms per 8-bar picture",
                    str(args.repeats),
                )
            )
            payload[f"musescore_{way.replace(' ', '_')}_ms"] = round(per_picture, 1)
    if audio_available()[0]:
        from generator.render import audio, loudness

        performance = audio.Performance.of_tokens(tokens, 100)
        settings = RenderSettings()
        render_audio(performance, settings)  # the soundfont is loaded once per process
        synthesizer = audio._Synthesizer.for_soundfont(settings.soundfont_path())
        samples = synthesizer.play(performance, 0)
        level = loudness.normalise(samples, audio.SAMPLE_RATE)
        stages = [
            ("FluidSynth (in-process)", lambda: synthesizer.play(performance, 0)),
            ("loudness (NumPy)", lambda: loudness.normalise(samples, audio.SAMPLE_RATE)),
            ("MP3 (LAME)", lambda: audio.encode_mp3(level)),
            ("the whole MP3 preview", lambda: render_audio(performance, settings)),
        ]
        if audio_available(settings, "voice")[0]:
            render_audio(performance, settings, "voice")  # its synthesizer, at 24 kHz
            voice = audio._Synthesizer.for_soundfont(
                settings.soundfont_path(), audio.VOICE_SAMPLE_RATE
            )
            voice_samples = voice.play(performance, 0)
            voice_level = loudness.normalise(voice_samples, audio.VOICE_SAMPLE_RATE)
            stages += [
                ("FluidSynth at 24 kHz (voice note)", lambda: voice.play(performance, 0)),
                (
                    "loudness at 24 kHz",
                    lambda: loudness.normalise(voice_samples, audio.VOICE_SAMPLE_RATE),
                ),
                ("OGG/Opus (libopus)", lambda: audio.encode_voice(voice_level)),
                ("the whole voice note", lambda: render_audio(performance, settings, "voice")),
            ]
        for name, action in stages:
            times = timed(action, args.repeats)
            rows.append((name, f"{median_ms(times):,.0f} ms", str(args.repeats)))
            payload[name] = round(median_ms(times), 1)
        if shutil.which("fluidsynth") and shutil.which("ffmpeg"):
            times = timed(lambda: _as_before(midi, settings.soundfont_path()), args.repeats)
            rows.append(
                (
                    "before: fluidsynth + ffmpeg programs",
                    f"{median_ms(times):,.0f} ms",
                    str(args.repeats),
                )
            )
            payload["before_ms"] = round(median_ms(times), 1)
    report("Rendering", rows, payload)


def _as_before(midi: bytes, soundfont) -> bytes:
    """The preview as it was made until the synthesizer moved in-process: a WAV from the
    FluidSynth program, then ffmpeg's loudness filter and MP3 encoder."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "melody.mid").write_bytes(midi)
        subprocess.run(
            [
                "fluidsynth",
                "-n",
                "-i",
                "-q",
                "-g",
                "0.8",
                "-r",
                "44100",
                "-F",
                "melody.wav",
                str(soundfont),
                "melody.mid",
            ],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                "melody.wav",
                "-af",
                "loudnorm=I=-16:TP=-1.5:LRA=11,aresample=44100",
                "-b:a",
                "128k",
                "melody.mp3",
            ],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        return (folder / "melody.mp3").read_bytes()


if __name__ == "__main__":
    main()
