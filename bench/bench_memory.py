"""Peak memory of building the training data: the seed method's one-hot windows vs ours.

The seed method materialises every 64-step window, one-hot, as float32: steps × 64 × vocabulary
floats. Ours keeps one int32 id array and slices padded windows from it on the fly with tf.data.
Each measurement runs in a fresh process; the figure is its peak resident memory above what the
process held just before building (libraries and the parsed corpus already loaded).

    python -m bench.bench_memory --help
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource

from bench.common import report

DATA = "../shared/data/esac/deutschl"
SEED_WINDOW = 64


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="utf-8") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(data: str, fraction: float):
    from generator.training.corpus import preprocess
    from generator.vocab import Vocabulary

    corpus = preprocess(data, progress=False)
    songs, _ = corpus.split()
    songs = songs[: max(1, int(len(songs) * fraction))]
    vocab = Vocabulary.from_sequences(s.tokens for s in corpus.songs)
    return songs, vocab


def build_one_hot(data: str, fraction: float, queue) -> None:
    """The tutorial's way: a delimiter run between songs, every window listed, then one-hot."""
    import numpy as np

    songs, vocab = _load(data, fraction)
    before = _rss_mib()
    series: list[int] = []
    for song in songs:
        series.extend(vocab.encode(song.tokens).tolist())
        series.extend([vocab.delimiter_id] * SEED_WINDOW)
    inputs = [series[i : i + SEED_WINDOW] for i in range(len(series) - SEED_WINDOW)]
    targets = np.array(series[SEED_WINDOW:], np.int32)
    one_hot = np.eye(len(vocab), dtype=np.float32)[np.array(inputs, np.int32)]
    queue.put((len(targets), _peak_mib() - before, one_hot.nbytes / 2**20))


def build_streamed(data: str, fraction: float, queue) -> None:
    """Ours: the flat id array plus (start, length) pairs; one full epoch of batches is drawn."""
    from generator.training.dataset import build_index, make_dataset

    songs, vocab = _load(data, fraction)
    import tensorflow as tf  # noqa: F401  (imported before measuring, like the corpus)

    before = _rss_mib()
    index = build_index(vocab, songs, window=256)
    batches = sum(1 for _ in make_dataset(index, 64, shuffle=True))
    assert batches > 0
    queue.put((index.target_count, _peak_mib() - before, index.ids.nbytes / 2**20))


def measure(target, data: str, fraction: float) -> tuple[int, float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(data, fraction, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA, help="song folder (default: the ESAC data)")
    parser.add_argument(
        "--fractions", default="0.05,0.1,0.2,1.0", help="shares of the training songs to build from"
    )
    parser.add_argument(
        "--one-hot-max",
        type=float,
        default=0.2,
        help="largest share built one-hot (the full corpus needs >10 GB)",
    )
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]

    rows = [("share of corpus", "steps", "one-hot windows: peak", "ours (tf.data): peak")]
    payload: dict[str, object] = {"bench": "memory", "points": []}
    slope = None
    for fraction in fractions:
        steps, ours_mib, _ = measure(build_streamed, args.data, fraction)
        if fraction <= args.one_hot_max:
            _, one_hot_mib, _ = measure(build_one_hot, args.data, fraction)
            slope = one_hot_mib / steps
            one_hot_text = f"{one_hot_mib:,.0f} MiB"
        else:
            one_hot_mib = slope * steps if slope else float("nan")
            one_hot_text = f"≈{one_hot_mib / 1024:,.1f} GiB (extrapolated)"
        rows.append((f"{fraction:.0%}", f"{steps:,}", one_hot_text, f"{ours_mib:,.0f} MiB"))
        payload["points"].append(  # type: ignore[union-attr]
            {
                "fraction": fraction,
                "steps": steps,
                "one_hot_mib": round(one_hot_mib, 1),
                "ours_mib": round(ours_mib, 1),
                "one_hot_measured": fraction <= args.one_hot_max,
            }
        )
    report("Peak memory of building the training data", rows, payload)


if __name__ == "__main__":
    main()
