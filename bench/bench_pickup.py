"""How well the engine hears an upbeat from an opening alone, for several decision margins.

Three quarters of the Essen songs begin with an upbeat; a user who types one (``G4:0.5 C5 C5 D5``)
rarely says ``pickup=``. The engine tries every note onset in the first bar as the first bar
line; the one the model and the training songs' upbeat lengths find likeliest is kept if the
model finds the opening likelier with it than with no upbeat by a margin (nats). This measures,
on the first bar (and upbeat) of **training** songs, how often the heard upbeat is the song's own,
with and without an upbeat, for each margin.

    python -m bench.bench_pickup --margins 0,1,2,3,5,8
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
    parser.add_argument("--margins", default="0,1,2,3,5,8", help="comma-separated margins (nats)")
    parser.add_argument("--songs", type=int, default=600)
    args = parser.parse_args()

    from generator.engine import MelodyEngine
    from generator.paths import default_model_dir
    from generator.training.corpus import quiet_music21
    from generator.training.report.build import choose_seed_songs, seed_request

    quiet_music21()
    engine = MelodyEngine.load(args.model or default_model_dir())
    training, _ = split_as_trained(engine, args.data)
    songs = choose_seed_songs(training, args.songs, 11)
    jobs = [engine.prepare(seed_request(s, 1.0, 0).with_options(pickup=None)) for s in songs]
    rows = [("margin (nats)", "songs with an upbeat: heard right", "without: heard right", "all")]
    payload: dict = {"bench": "pickup", "songs": len(songs), "margins": {}}
    for margin in (float(m) for m in args.margins.split(",")):
        heard = [engine.hear_pickup(job, margin) for job in jobs]
        right = np.array([h == s.pickup for h, s in zip(heard, songs, strict=True)])
        upbeat = np.array([s.pickup > 0 for s in songs])
        with_, without = right[upbeat].mean(), right[~upbeat].mean()
        payload["margins"][margin] = {
            "with_upbeat": float(with_),
            "without_upbeat": float(without),
            "all": float(right.mean()),
        }
        rows.append((f"{margin:g}", f"{with_:.1%}", f"{without:.1%}", f"{right.mean():.1%}"))
    report(
        f"Hearing the upbeat, {len(songs)} training openings "
        f"({sum(s.pickup > 0 for s in songs)} with an upbeat)",
        rows,
        payload,
    )


if __name__ == "__main__":
    main()
