"""How strongly the sampler should favour the tonic as a melody's last note.

On the last strong beat of the last bar (unless the model chose the tonic on an earlier strong
beat), the engine draws the final note from the tonic triad, the tonic favoured by a bias in
nats. This measures, for each bias, how often melodies end on the tonic, seeded with the first
bar of **training** songs and as long as those songs, beside those songs' own endings.

    python -m bench.bench_final_note --biases 0,1,1.5,2,2.5,3
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import report, split_as_trained

DATA = "../shared/data/esac/deutschl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--biases", default="0,1,1.5,2,2.5,3", help="comma-separated, in nats")
    parser.add_argument("--melodies", type=int, default=400)
    args = parser.parse_args()

    from generator.engine import ENDED_BY_MODEL, MelodyEngine
    from generator.paths import default_model_dir
    from generator.request import DEFAULT_TEMPERATURE
    from generator.training.corpus import quiet_music21
    from generator.training.report.build import choose_seed_songs, seed_request
    from generator.training.report.form_checks import melody_figures, song_figures

    quiet_music21()
    engine = MelodyEngine.load(args.model or default_model_dir())
    training, _ = split_as_trained(engine, args.data)
    songs = choose_seed_songs(training, args.melodies, 21)
    real = song_figures(songs)
    rows = [("tonic bias (nats)", "ends on the tonic", "cadence chosen by the model")]
    payload: dict = {"bench": "final_note", "songs": len(songs), "biases": {}}
    for bias in (float(b) for b in args.biases.split(",")):
        engine.final_tonic_bias = bias
        requests = [seed_request(s, DEFAULT_TEMPERATURE, 500 + i) for i, s in enumerate(songs)]
        melodies = engine.compose_all(requests)
        figures = melody_figures(melodies)
        by_model = float(np.mean([m.ending == ENDED_BY_MODEL for m in melodies]))
        payload["biases"][bias] = {"ends_on_tonic": figures["ends_on_tonic"], "by_model": by_model}
        rows.append((f"{bias:g}", f"{figures['ends_on_tonic']:.1%}", f"{by_model:.1%}"))
    rows.append(("the training songs themselves", f"{real['ends_on_tonic']:.1%}", ""))
    report(f"Final note, {len(songs)} melodies from training openings", rows, payload)


if __name__ == "__main__":
    main()
