"""Median render time of a 16-bar melody: MuseScore PNG, verovio PNG and the MP3 preview.

python -m bench.bench_render --help
"""

from __future__ import annotations

import argparse

from bench.common import median_ms, report, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs per backend")
    parser.add_argument("--bars", type=int, default=16)
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
    if audio_available()[0]:
        times = timed(lambda: render_audio(midi), args.repeats)
        rows.append(("FluidSynth + ffmpeg MP3", f"{median_ms(times):,.0f} ms", str(args.repeats)))
        payload["audio_ms"] = round(median_ms(times), 1)
    report("Rendering", rows, payload)


if __name__ == "__main__":
    main()
