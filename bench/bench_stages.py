"""CPU per melody, stage by stage, as the worker processes do the work: where the time goes.

Each stage is timed in CPU seconds (this process and the child processes it waits for, i.e.
MuseScore), so the figures hold on a busy machine too. Melodies come from the shipped model,
50 at a time as a worker samples them under load (and alone, as on an idle bot); the score
pictures are drawn in batches of 4 as a worker draws them. The total is one complete melody:
sampled, its MIDI written, its score drawn and its preview played.

    python -m bench.bench_stages --help
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

from bench.common import report
from melodybot.environment import configure_process


def cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def per_item(function: Callable[[], object], items: int, repeats: int) -> float:
    """Median CPU ms per item of ``function`` (which handles ``items`` items per call)."""
    times = []
    for _ in range(repeats):
        started = cpu_s()
        function()
        times.append((cpu_s() - started) * 1000 / items)
    return statistics.median(times)


def stages(bars: int, repeats: int, batch: int) -> dict[str, float]:
    from bot.jobs import WorkerSetup, compose, draw, play, setup
    from generator.paths import default_model_dir
    from generator.render import RenderSettings
    from generator.request import parse_request

    setup(WorkerSetup(default_model_dir(), RenderSettings(), audio=True))
    requests = [parse_request(f"C4 D4 E4 G4 temp=0.9 bars={bars} seed={n}") for n in range(batch)]
    melodies = [composed.melody for composed in compose(requests)]
    pictures = [(m, f"#{n}") for n, m in enumerate(melodies[:4])]
    one = melodies[0]
    result = {
        "sampling + MIDI file, 50 at once": per_item(lambda: one_batch(requests), batch, repeats),
        "sampling + MIDI file, alone": per_item(lambda: one_batch(requests[:1]), 1, repeats),
        "of which the MIDI file (mido)": per_item(lambda: one.to_midi(), 1, repeats * 5),
        "of which the MusicXML (music21)": per_item(lambda: one.to_musicxml("#1"), 1, repeats),
        "MusicXML + score picture, MuseScore batch of 4": per_item(
            lambda: draw(pictures), len(pictures), repeats
        ),
        "voice note (synth, loudness, Opus)": per_item(lambda: play([(one, "voice")]), 1, repeats),
        "MP3 preview (synth, loudness, LAME)": per_item(lambda: play([(one, "mp3")]), 1, repeats),
    }
    picture = result["MusicXML + score picture, MuseScore batch of 4"]
    base = result["sampling + MIDI file, 50 at once"] + picture
    result["complete melody with a voice note"] = (
        base + result["voice note (synth, loudness, Opus)"]
    )
    result["complete melody with an MP3"] = base + result["MP3 preview (synth, loudness, LAME)"]
    return result


def one_batch(requests) -> None:
    from bot.jobs import compose

    compose(requests)


def main() -> None:
    configure_process()  # as the bot runs: one BLAS thread, set before NumPy loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=50, help="melodies sampled together")
    args = parser.parse_args()
    short, long = stages(8, args.repeats, args.batch), stages(32, args.repeats, args.batch)
    rows = [("stage (CPU ms per melody)", "8 bars", "32 bars")]
    rows += [(name, f"{short[name]:.1f}", f"{long[name]:.1f}") for name in short]
    report("CPU per melody, stage by stage", rows, {"bench": "stages", "8": short, "32": long})


if __name__ == "__main__":
    main()
