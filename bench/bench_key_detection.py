"""Reading a key from an opening: ours against music21's key analysis, on the Essen songs.

Every song is stored in C major or A minor with its mode, so its first bars (with the upbeat)
have a known key. Openings of more than four pitch classes are read by both detectors (music21's
``analyze("key")``: Aarden's profiles, each note counted once); shorter ones only by ours, since
music21 is not meant for a handful of notes.

    python -m bench.bench_key_detection --bars 2
"""

from __future__ import annotations

import argparse
import time

from bench.common import report

DATA = "../shared/data/esac/deutschl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--bars", type=int, default=2, help="opening length in bars")
    parser.add_argument("--every", type=int, default=3, help="use every n-th song")
    args = parser.parse_args()

    from music21 import note as m21note
    from music21 import stream as m21stream

    from generator import encoding
    from generator.keys import detect_key
    from generator.training.corpus import preprocess

    songs = preprocess(args.data, progress=False).songs[:: args.every]
    tallies = {"ours, long": [0, 0, 0.0], "music21, long": [0, 0, 0.0], "ours, short": [0, 0, 0.0]}
    for song in songs:
        steps = song.pickup + args.bars * song.layout.bar_steps
        events = [(e.pitch, e.steps) for e in encoding.tokens_to_events(song.tokens[:steps])]
        pitches = [p for p, _ in events if p is not None]
        want = (0, "major") if song.mode == "major" else (9, "minor")
        short = len({p % 12 for p in pitches}) <= 4
        started = time.perf_counter()
        key = detect_key(events)
        _tally(tallies["ours, short" if short else "ours, long"], key, want, started)
        if not short:
            started = time.perf_counter()
            key = m21stream.Stream([m21note.Note(p) for p in pitches]).analyze("key")
            _tally(tallies["music21, long"], key, want, started)
    rows = [("detector, openings", "songs", "key right", "ms per opening")]
    for name, (right, count, seconds) in tallies.items():
        rows.append((name, str(count), f"{right / count:.1%}", f"{seconds / count * 1000:.2f}"))
    report(
        f"Key of the first {args.bars} bars ('long': more than four pitch classes)",
        rows,
        {"bench": "key_detection", "bars": args.bars, "tallies": tallies},
    )


def _tally(tally: list, key, want: tuple[int, str], started: float) -> None:
    tally[2] += time.perf_counter() - started
    tally[1] += 1
    tally[0] += (key.tonic.pitchClass, key.mode) == want


if __name__ == "__main__":
    main()
