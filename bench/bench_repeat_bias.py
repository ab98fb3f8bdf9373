"""How strongly the sampler should favour completing a bar repeat already under way.

Folk songs repeat whole bars (the second bar of a phrase echoes the first, a phrase returns); a
sampler drawing one step at a time tends to stray from a repeat it began. The engine can add a
bias (in nats) to the step that completes a repeat under way. This measures, for each bias, the
share of repeated bars, bars starting with a note and the longest run copied from a training
song, in 16-bar melodies seeded with the first bar of **training** songs (so that the held-out
songs the report compares with play no part in choosing it), beside those songs' own first 16
bars.

    python -m bench.bench_repeat_bias --biases 0,1,2,3
"""

from __future__ import annotations

import argparse
import statistics

from bench.common import report, split_as_trained

DATA = "../shared/data/esac/deutschl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--biases", default="0,1,2,3", help="comma-separated biases in nats")
    parser.add_argument("--melodies", type=int, default=300)
    parser.add_argument("--temp", type=float, default=None, help="default: the bot's default")
    args = parser.parse_args()

    from generator.engine import MelodyEngine
    from generator.paths import default_model_dir
    from generator.request import DEFAULT_TEMPERATURE
    from generator.training.corpus import quiet_music21
    from generator.training.report import features as f
    from generator.training.report.build import choose_seed_songs, seed_request
    from generator.training.report.form_checks import melody_figures, song_figures

    quiet_music21()
    engine = MelodyEngine.load(args.model or default_model_dir())
    training, _ = split_as_trained(engine, args.data)
    songs = [
        s
        for s in choose_seed_songs(training, 100_000, 5)
        if len(s.tokens) >= s.pickup + 16 * s.layout.bar_steps
    ][: args.melodies]
    copies = f.CopyFinder([s.tokens for s in training])
    temperature = args.temp or DEFAULT_TEMPERATURE
    real = song_figures(songs, bars=16)
    rows = [("repeat bias (nats)", "repeated bars", "bars start with a note", "ties", "copy")]
    payload: dict = {"bench": "repeat_bias", "temperature": temperature, "biases": {}}
    for bias in (float(b) for b in args.biases.split(",")):
        engine.repeat_bias = bias
        requests = [seed_request(s, temperature, 9_000 + i, bars=16) for i, s in enumerate(songs)]
        melodies = engine.compose_all(requests)
        figures = melody_figures(melodies)
        # the opening bar itself comes from a training song: measure copies after it
        copy = statistics.median(
            copies.longest_copy(m.tokens[m.pickup + m.layout.bar_steps :]) for m in melodies
        )
        payload["biases"][bias] = figures | {"longest_copy_median": copy}
        rows.append(
            (
                f"{bias:g}",
                f"{figures['repeated_bars']:.1%}",
                f"{figures['bars_start_with_note']:.1%}",
                f"{figures['notes_tied_over_bar']:.2%}",
                f"{copy:g}",
            )
        )
    rows.append(
        (
            "the training songs' own first 16 bars",
            f"{real['repeated_bars']:.1%}",
            f"{real['bars_start_with_note']:.1%}",
            f"{real['notes_tied_over_bar']:.2%}",
            "",
        )
    )
    report(
        f"Repeat bias, {len(songs)} 16-bar melodies from training openings, temp {temperature:g}",
        rows,
        payload | {"real": real},
    )


if __name__ == "__main__":
    main()
