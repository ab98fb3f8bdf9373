"""Which form inputs the network should read: the same network trained with each set for the
same number of epochs, then scored on the held-out songs and composing from their openings.

Each variant adds inputs to the one before, so a row's gain over the row above is what its
inputs bring: bits per step on whole held-out songs (state carried), and form figures of 16-bar
melodies seeded with the first bar of held-out songs at the default temperature.

    python -m bench.bench_form_inputs --epochs 5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import report

DATA = "../shared/data/esac/deutschl"
VARIANTS = {
    "step only (no form)": (),
    "+ meter & position in bar, bars left": ("metric", "remaining"),
    "+ bar in four-bar group": ("metric", "remaining", "group"),
    "+ lookback (steps 1 and 2 bars back, repeat flags)": (
        "metric",
        "remaining",
        "group",
        "repeat",
        "back_1",
        "back_2",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per variant")
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--melodies", type=int, default=150, help="16-bar melodies per variant")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/form-inputs"), help="models and results (resumed)"
    )
    args = parser.parse_args()

    from generator.engine import MelodyEngine
    from generator.request import DEFAULT_TEMPERATURE
    from generator.training.corpus import preprocess, quiet_music21
    from generator.training.report.build import choose_seed_songs, seed_request
    from generator.training.report.form_checks import melody_figures, song_figures
    from generator.training.train import TrainConfig, train

    quiet_music21()
    corpus = preprocess(args.data, progress=False)
    _, held_out = corpus.split(10)
    openings = [s for s in choose_seed_songs(held_out, 10_000, 0) if _bars(s) >= 16]
    openings = openings[: args.melodies]
    results_path = args.out / "results.json"
    results: dict = json.loads(results_path.read_text()) if results_path.exists() else {}
    for label, inputs in VARIANTS.items():
        if label in results:
            continue
        model_dir = args.out / f"variant-{len(inputs)}"
        meta = train(
            TrainConfig(
                data=args.data,
                out_dir=model_dir,
                units=args.units,
                epochs=args.epochs,
                form_inputs=inputs,
                verbose=0,
            )
        )
        engine = MelodyEngine.load(model_dir)
        requests = [
            seed_request(song, DEFAULT_TEMPERATURE, 7_000 + i, bars=16)
            for i, song in enumerate(openings)
        ]
        melodies = engine.compose_all(requests)
        figures = melody_figures(melodies)
        results[label] = {
            "inputs": list(inputs),
            "bits_per_step": meta["validation"]["nll_bits_per_step"],
            "epochs": meta["epochs_run"],
            "minutes": round(meta["wall_time_s"] / 60, 1),
            "form": figures,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        print(label, json.dumps(results[label]), flush=True)

    real = song_figures(openings, bars=16)
    rows = [
        (
            "inputs",
            "bits/step",
            "minutes",
            "repeated bars",
            "bars start with a note",
            "notes tied over a bar line",
            "long notes in even bars",
        )
    ]
    for label, data in [*results.items(), ("held-out songs (first 16 bars)", {"form": real})]:
        fig = data["form"]
        rows.append(
            (
                label,
                f"{data['bits_per_step']:.3f}" if "bits_per_step" in data else "",
                str(data.get("minutes", "")),
                f"{fig['repeated_bars']:.1%}",
                f"{fig['bars_start_with_note']:.1%}",
                f"{fig['notes_tied_over_bar']:.2%}",
                f"{fig['long_notes_in_even_bars']:.1%}",
            )
        )
    report(
        f"Form inputs, {args.epochs} epochs of training each, {len(openings)} 16-bar melodies",
        rows,
        {"variants": results, "real": real},
    )


def _bars(song) -> int:
    return (len(song.tokens) - song.pickup) // song.layout.bar_steps


if __name__ == "__main__":
    main()
