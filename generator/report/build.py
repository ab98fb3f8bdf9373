"""The melody quality report: generate from held-out seeds, measure, compare, plot, write.

Seeds are the first bar (16 steps) of held-out songs, which the model never trained on; each
melody is asked for the length of the song it was seeded from (at most 512 steps), in that song's
key (C major or A minor, as the corpus is stored), with a fixed random seed, so the same model
gives the same report. Every feature is compared to the held-out songs themselves; the held-out
songs compared to as many training songs give the ceiling a perfect model would reach.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generator import encoding
from generator.corpus import Corpus
from generator.engine import STOPPED_AT_SONG_END, MelodyEngine
from generator.report import features as f
from generator.report.overlap import feature_overlap
from generator.report.plots import distribution_plot, histogram_plot
from generator.request import MelodyRequest, SeedNote

SEED_STEPS = 16
MAX_STEPS = 512
TONIC = {"major": 0, "minor": 9}


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    measure: Callable[[Sequence[str], int, str], object]
    bins: tuple[str, ...] = ()  # histogram features name their bins


FEATURES = (
    Feature("in_scale", "in-scale rate", lambda t, k, m: f.in_scale_rate(t, k, m)),
    Feature("range", "pitch range (semitones)", lambda t, k, m: f.pitch_range(t)),
    Feature("pitch_classes", "distinct pitch classes", lambda t, k, m: f.distinct_pitch_classes(t)),
    Feature("pc_entropy", "pitch-class entropy (bits)", lambda t, k, m: f.pitch_class_entropy(t)),
    Feature("ends_on_tonic", "ends on the tonic", lambda t, k, m: float(f.ends_on_tonic(t, k))),
    Feature("repeated_bars", "share of repeated bars", lambda t, k, m: f.repeated_bar_share(t)),
    Feature(
        "intervals", "melodic intervals", lambda t, k, m: f.interval_histogram(t), f.INTERVAL_BINS
    ),
    Feature(
        "durations",
        "note and rest lengths",
        lambda t, k, m: f.duration_histogram(t),
        f.DURATION_LABELS,
    ),
    Feature(
        "pitch_class_profile",
        "pitch classes from the tonic",
        lambda t, k, m: f.pitch_class_histogram(t, k),
        ("1", "♭2", "2", "♭3", "3", "4", "♯4", "5", "♭6", "6", "♭7", "7"),
    ),
)


@dataclass
class MelodySet:
    name: str
    tokens: list[tuple[str, ...]]
    modes: list[str]
    stopped_by_itself: float | None = None

    def measure(self) -> dict[str, list]:
        return {
            feature.name: [
                feature.measure(t, TONIC[m], m)
                for t, m in zip(self.tokens, self.modes, strict=True)
            ]
            for feature in FEATURES
        }


def choose_seed_songs(held_out: Sequence, n: int, seed: int) -> list:
    usable = [
        s
        for s in held_out
        if len(s.tokens) >= 3 * SEED_STEPS and any(t.isdecimal() for t in s.tokens[:SEED_STEPS])
    ]
    rng = random.Random(seed)
    rng.shuffle(usable)
    return usable[:n]


def seed_request(song, mode: str, temperature: float, rng_seed: int) -> MelodyRequest:
    events = encoding.tokens_to_events(song.tokens[:SEED_STEPS])
    return MelodyRequest(
        seed_notes=tuple(SeedNote(e.pitch, e.steps) for e in events),
        temperature=temperature,
        steps=min(len(song.tokens), MAX_STEPS),
        key="C" if mode == "major" else "Am",
        rng_seed=rng_seed,
    )


def generate_set(
    engine: MelodyEngine,
    songs: Sequence,
    modes: Sequence[str],
    temperature: float,
    seed: int,
    progress: bool,
) -> MelodySet:
    requests = [
        seed_request(s, m, temperature, seed * 1_000_003 + i)
        for i, (s, m) in enumerate(zip(songs, modes, strict=True))
    ]
    melodies = []
    batches = range(0, len(requests), 50)
    for begin in tqdm(batches, desc=f"composing at temp {temperature:g}", disable=not progress):
        melodies += engine.compose_many(requests[begin : begin + 50])
    stopped = sum(m.stopped_by == STOPPED_AT_SONG_END for m in melodies) / max(len(melodies), 1)
    return MelodySet(f"temp {temperature:g}", [m.tokens for m in melodies], list(modes), stopped)


def build_report(
    engine: MelodyEngine,
    corpus: Corpus,
    *,
    n: int,
    temperatures: Sequence[float],
    out_dir: Path,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    percent = engine.meta.get("hyperparameters", {}).get("validation_percent", 10)
    training, held_out = corpus.split(percent)
    songs = choose_seed_songs(held_out, n, seed)
    if not songs:
        raise ValueError("no held-out songs long enough to seed the report")
    modes = [f.reference_mode(s.tokens) for s in songs]
    reference = MelodySet("held-out songs", [s.tokens for s in songs], modes)
    sample = random.Random(seed + 1).sample(training, min(len(songs), len(training)))
    ceiling = MelodySet(
        "training songs", [s.tokens for s in sample], [f.reference_mode(s.tokens) for s in sample]
    )
    generated = [generate_set(engine, songs, modes, t, seed, progress) for t in temperatures]

    copies = f.CopyFinder([s.tokens for s in training])
    reference_values = reference.measure()
    results: dict = {"n": len(songs), "model": engine.name, "features": {}, "sets": {}}
    for melody_set in [ceiling, *generated]:
        values = melody_set.measure()
        overlaps = {
            ft.name: feature_overlap(reference_values[ft.name], values[ft.name]) for ft in FEATURES
        }
        # training songs are found whole in the training set: memorisation means nothing there
        longest = (
            None if melody_set is ceiling else [copies.longest_copy(t) for t in melody_set.tokens]
        )
        results["sets"][melody_set.name] = {
            "overlap": overlaps,
            "mean_overlap": float(np.mean(list(overlaps.values()))),
            "means": {ft.name: _mean(values[ft.name]) for ft in FEATURES},
            "stopped_by_itself": melody_set.stopped_by_itself,
            "longest_copy_median": None if longest is None else float(np.median(longest)),
            "longest_copy_max": None if longest is None else int(max(longest)),
        }
        melody_set.values = values  # type: ignore[attr-defined]
    results["reference_means"] = {ft.name: _mean(reference_values[ft.name]) for ft in FEATURES}
    results["reference_longest_copy_median"] = float(
        np.median([copies.longest_copy(t) for t in reference.tokens])
    )
    best = max(generated, key=lambda s: results["sets"][s.name]["mean_overlap"])
    results["recommended_temperature"] = float(best.name.split()[-1])

    out_dir.mkdir(parents=True, exist_ok=True)
    _plots(out_dir, reference_values, [ceiling, *generated])
    (out_dir / "report.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "index.md").write_text(markdown(results))
    return results


def _mean(values: list) -> float | list[float]:
    array = np.asarray(values, dtype=float)
    return array.mean(axis=0).round(4).tolist() if array.ndim > 1 else round(float(array.mean()), 4)


def _plots(out_dir: Path, reference_values: dict, sets: list[MelodySet]) -> None:
    for feature in FEATURES:
        series = {"held-out songs": np.asarray(reference_values[feature.name], dtype=float)}
        series |= {s.name: np.asarray(s.values[feature.name], dtype=float) for s in sets}
        path = out_dir / f"{feature.name}.png"
        if feature.bins:
            histogram_plot(
                path,
                feature.label,
                list(feature.bins),
                {k: v.mean(axis=0) for k, v in series.items()},
            )
        else:
            distribution_plot(path, feature.label, series)


def markdown(results: dict) -> str:
    """The report as a page a person reads at a glance: one table, then the pictures."""
    names = list(results["sets"])
    lines = [
        f"# Melody quality report — {results['model']}",
        "",
        f"{results['n']} melodies per set, seeded with the first bar of held-out songs. "
        "Each cell: the set's mean (overlap with the held-out songs, 1 = same distribution)."
        " `training songs` is the ceiling: real songs compared with real songs.",
        "",
        "| feature | held-out songs | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for feature in FEATURES:
        reference = results["reference_means"][feature.name]
        row = [feature.label, _fmt(reference)]
        for name in names:
            data = results["sets"][name]
            row.append(f"{_fmt(data['means'][feature.name])} ({data['overlap'][feature.name]:.2f})")
        lines.append("| " + " | ".join(row) + " |")
    lines.append(
        "| **mean overlap** | | "
        + " | ".join(f"**{results['sets'][n]['mean_overlap']:.3f}**" for n in names)
        + " |"
    )
    lines.append(
        "| stops by itself (song end) | | "
        + " | ".join(
            "—"
            if results["sets"][n]["stopped_by_itself"] is None
            else f"{results['sets'][n]['stopped_by_itself']:.0%}"
            for n in names
        )
        + " |"
    )
    lines.append(
        f"| longest run copied from a training song, median (max) steps | "
        f"{results['reference_longest_copy_median']:.0f} | "
        + " | ".join(_copies(results["sets"][n]) for n in names)
        + " |"
    )
    lines += [
        "",
        f"Recommended default temperature: **{results['recommended_temperature']:g}** "
        "(the highest mean overlap).",
        "",
    ]
    lines += [f"![{ft.label}]({ft.name}.png)" for ft in FEATURES]
    return "\n".join(lines) + "\n"


def _copies(data: dict) -> str:
    if data["longest_copy_median"] is None:
        return "—"
    return f"{data['longest_copy_median']:.0f} ({data['longest_copy_max']})"


def _fmt(value) -> str:
    if isinstance(value, list):
        return "plot"
    return f"{value:.2f}"
