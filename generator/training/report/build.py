"""The melody quality report: generate from held-out seeds, measure, compare, plot, write.

Seeds are the first bar (with its upbeat) of held-out songs, which the model never trained on;
each melody is asked for as many bars as the song it was seeded from has (at most 32), in that
song's meter, upbeat and key (C major or A minor, as the corpus is stored), with a fixed random
seed, so the same model gives the same report. Every feature is compared to the held-out songs
themselves (or to any folder of songs given as the reference); the held-out songs compared to as
many training songs give the ceiling a perfect model would reach. Form figures (length, bar
lines, cadence, repeats, ties) are read on each melody's own bar grid, overall and per meter,
and a listening page puts a dozen generated melodies beside real ones to look at and hear.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator import encoding
from generator.engine import ENDED_BY_MODEL, Melody, MelodyEngine
from generator.form import Layout
from generator.keys import REFERENCE_PITCH_CLASS
from generator.request import DEFAULT_TEMPERATURE, MelodyRequest, SeedNote
from generator.training.corpus import Corpus, Song
from generator.training.report import features as f
from generator.training.report.form_checks import (
    FORM_FIGURES,
    FORM_METERS,
    form_figures,
    run_sweeps,
)
from generator.training.report.overlap import feature_overlap
from generator.training.report.plots import distribution_plot, histogram_plot

MAX_BARS = 32


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    measure: Callable[[Sequence[str], int, Layout], object]  # (tokens, tonic, bar grid)
    bins: tuple[str, ...] = ()  # histogram features name their bins


FEATURES = (
    Feature("in_scale", "in-scale rate", lambda t, k, lay: f.in_scale_rate(t, k, _mode(k))),
    Feature("range", "pitch range (semitones)", lambda t, k, lay: f.pitch_range(t)),
    Feature(
        "pitch_classes", "distinct pitch classes", lambda t, k, lay: f.distinct_pitch_classes(t)
    ),
    Feature("pc_entropy", "pitch-class entropy (bits)", lambda t, k, lay: f.pitch_class_entropy(t)),
    Feature("ends_on_tonic", "ends on the tonic", lambda t, k, lay: float(f.ends_on_tonic(t, k))),
    Feature(
        "repeated_bars", "share of repeated bars", lambda t, k, lay: f.repeated_bar_share(t, lay)
    ),
    Feature(
        "intervals",
        "melodic intervals",
        lambda t, k, lay: f.interval_histogram(t),
        f.INTERVAL_BINS,
    ),
    Feature(
        "durations",
        "note and rest lengths",
        lambda t, k, lay: f.duration_histogram(t),
        f.DURATION_LABELS,
    ),
    Feature(
        "pitch_class_profile",
        "pitch classes from the tonic",
        lambda t, k, lay: f.pitch_class_histogram(t, k),
        ("1", "♭2", "2", "♭3", "3", "4", "♯4", "5", "♭6", "6", "♭7", "7"),
    ),
)


def _mode(tonic: int) -> str:
    return "minor" if tonic == REFERENCE_PITCH_CLASS["minor"] else "major"


@dataclass
class MelodySet:
    """Melodies with their key (tonic pitch class) and bar grid; generated sets also carry what
    was requested and the melodies themselves."""

    name: str
    tokens: list[tuple[str, ...]]
    tonics: list[int]
    layouts: list[Layout]
    requested: list[int] | None = None  # asked-for lengths in steps (generated sets)
    melodies: list[Melody] = field(default_factory=list)
    values: dict[str, list] = field(default_factory=dict)

    @classmethod
    def of_songs(cls, name: str, songs: Sequence[Song]) -> MelodySet:
        return cls(
            name,
            [s.tokens for s in songs],
            [REFERENCE_PITCH_CLASS[s.mode] for s in songs],
            [s.layout for s in songs],
        )

    def measure(self) -> dict[str, list]:
        self.values = {
            feature.name: [
                feature.measure(t, k, lay)
                for t, k, lay in zip(self.tokens, self.tonics, self.layouts, strict=True)
            ]
            for feature in FEATURES
        }
        return self.values

    def form(self, meter: str | None = None) -> dict[str, float | None]:
        rows = [i for i, lay in enumerate(self.layouts) if meter is None or lay.meter.name == meter]
        requested = None if self.requested is None else [self.requested[i] for i in rows]
        return form_figures(
            [self.tokens[i] for i in rows],
            [self.layouts[i] for i in rows],
            [self.tonics[i] for i in rows],
            requested,
        )


def choose_seed_songs(held_out: Sequence[Song], n: int, seed: int) -> list[Song]:
    """Held-out songs of at least three bars whose first bar has a note, shuffled by ``seed``."""
    usable = [
        s
        for s in held_out
        if len(s.tokens) >= s.pickup + 3 * s.layout.bar_steps
        and any(t.isdecimal() for t in s.tokens[: s.pickup + s.layout.bar_steps])
    ]
    rng = random.Random(seed)
    rng.shuffle(usable)
    return usable[:n]


def seed_request(
    song: Song, temperature: float, rng_seed: int, *, bars: int | None = None
) -> MelodyRequest:
    """The song's first bar (and upbeat) as the opening, in its key, meter and upbeat; as many
    bars as the song has (at most :data:`MAX_BARS`) unless ``bars`` says otherwise."""
    bar = song.layout.bar_steps
    events = encoding.tokens_to_events(song.tokens[: song.pickup + bar])
    song_bars = (len(song.tokens) - song.pickup) // bar
    return MelodyRequest(
        seed_notes=tuple(SeedNote(e.pitch, e.steps) for e in events),
        temperature=temperature,
        bars=bars or min(song_bars, MAX_BARS),
        key="C" if song.mode == "major" else "Am",
        meter=song.meter,
        pickup=song.pickup,
        rng_seed=rng_seed,
    )


def generate_set(
    engine: MelodyEngine, songs: Sequence[Song], temperature: float, seed: int, progress: bool
) -> MelodySet:
    requests = [seed_request(s, temperature, seed * 1_000_003 + i) for i, s in enumerate(songs)]
    melodies = engine.compose_all(
        requests, progress=f"composing at temp {temperature:g}" if progress else ""
    )
    return MelodySet(
        f"temp {temperature:g}",
        [m.tokens for m in melodies],
        [REFERENCE_PITCH_CLASS[s.mode] for s in songs],
        [m.layout for m in melodies],
        requested=[r.total_steps for r in requests],
        melodies=melodies,
    )


def build_report(
    engine: MelodyEngine,
    corpus: Corpus,
    *,
    n: int,
    temperatures: Sequence[float],
    out_dir: Path,
    seed: int = 0,
    progress: bool = True,
    reference: Sequence[Song] | None = None,
    listen: int = 12,
) -> dict:
    """Write index.md, report.json, the plots and (``listen`` > 0) listen.html into ``out_dir``.

    ``reference``: songs to compare with instead of the held-out songs (the seeds still come
    from the held-out songs, which the model never saw).
    """
    percent = engine.meta.get("hyperparameters", {}).get("validation_percent", 10)
    training, held_out = corpus.split(percent)
    songs = choose_seed_songs(held_out, n, seed)
    if not songs:
        raise ValueError("no held-out songs long enough to seed the report")
    compared = list(reference) if reference else songs
    if reference and len(compared) > n:
        compared = random.Random(seed + 2).sample(compared, n)
    reference_set = MelodySet.of_songs(
        "reference songs" if reference else "held-out songs", compared
    )
    sample = random.Random(seed + 1).sample(training, min(len(compared), len(training)))
    ceiling = MelodySet.of_songs("training songs", sample)
    generated = [generate_set(engine, songs, t, seed, progress) for t in temperatures]

    copies = f.CopyFinder([s.tokens for s in training])
    reference_values = reference_set.measure()
    results: dict = {
        "n": len(songs),
        "model": engine.name,
        "reference": reference_set.name,
        "features": {},
        "sets": {},
    }
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
            "model_chose_cadence": _model_cadences(melody_set),
            "longest_copy_median": None if longest is None else float(np.median(longest)),
            "longest_copy_max": None if longest is None else int(max(longest)),
        }
    results["reference_means"] = {ft.name: _mean(reference_values[ft.name]) for ft in FEATURES}
    results["reference_longest_copy_median"] = float(
        np.median([copies.longest_copy(t) for t in reference_set.tokens])
    )
    results["form"] = {
        s.name: {"all": s.form()} | {m: s.form(m) for m in FORM_METERS}
        for s in [reference_set, *generated]
    }
    best = max(generated, key=lambda s: results["sets"][s.name]["mean_overlap"])
    results["recommended_temperature"] = float(best.name.split()[-1])
    default = _default_set(generated)
    results["sweeps"] = run_sweeps(
        engine, float(default.name.split()[-1]), seed, repeats_from=songs
    )
    results["pickup_heard"] = pickup_hearing(engine, songs)

    out_dir.mkdir(parents=True, exist_ok=True)
    _plots(out_dir, reference_set, [ceiling, *generated])
    if listen:
        results["listening_page"] = _listening_page(out_dir, default, songs, listen, progress).name
    (out_dir / "report.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "index.md").write_text(markdown(results))
    return results


def _default_set(generated: Sequence[MelodySet]) -> MelodySet:
    """The set at the bot's default temperature, or the nearest one asked for."""
    return min(generated, key=lambda s: abs(float(s.name.split()[-1]) - DEFAULT_TEMPERATURE))


def _model_cadences(melody_set: MelodySet) -> float | None:
    if not melody_set.melodies:
        return None
    return float(np.mean([m.ending == ENDED_BY_MODEL for m in melody_set.melodies]))


def pickup_hearing(engine: MelodyEngine, songs: Sequence[Song]) -> dict:
    """How often the upbeat heard from a song's first bar is the song's own upbeat."""
    heard_right = {"with upbeat": [], "without upbeat": []}
    for song in songs:
        request = seed_request(song, DEFAULT_TEMPERATURE, 0).with_options(pickup=None)
        heard = engine.hear_pickup(engine.prepare(request))
        heard_right["with upbeat" if song.pickup else "without upbeat"].append(heard == song.pickup)
    return {
        name: {"songs": len(hits), "right": float(np.mean(hits)) if hits else None}
        for name, hits in heard_right.items()
    }


def _listening_page(
    out_dir: Path, melody_set: MelodySet, songs: Sequence[Song], count: int, progress: bool
) -> Path:
    """A dozen generated melodies, spread over the meters, beside the songs that seeded them."""
    from music21 import key as m21key
    from music21.midi.translate import streamToMidiFile
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from generator.training.report.listening import ListeningItem, write_listening_page

    by_meter: dict[str, list[int]] = {}
    for i, song in enumerate(songs):
        by_meter.setdefault(song.meter, []).append(i)
    chosen: list[int] = []
    while len(chosen) < min(count, len(songs)):
        for rows in by_meter.values():
            if rows and len(chosen) < count:
                chosen.append(rows.pop(0))
    items = []
    for i in chosen:
        melody, song = melody_set.melodies[i], songs[i]
        label = f"{song.meter} · {melody.bars:g} bars · seeded from {song.song_id}"
        items.append(
            ListeningItem(
                f"{melody_set.name} · {label}",
                "generated",
                melody.to_musicxml(title=f"generated · {label}"),
                melody.to_midi(),
            )
        )
        key = m21key.Key("C" if song.mode == "major" else "a")
        score = encoding.decode(
            song.tokens, meter=song.meter, key=key, pickup=song.pickup, title=song.song_id
        )
        items.append(
            ListeningItem(
                f"{song.song_id} · {song.meter}",
                "real",
                bytes(GeneralObjectExporter(score).parse()),
                bytes(streamToMidiFile(score).writestr()),
            )
        )
    return write_listening_page(
        out_dir, items, title="Generated melodies beside real folk songs", progress=progress
    )


def _mean(values: list) -> float | list[float]:
    array = np.asarray(values, dtype=float)
    return array.mean(axis=0).round(4).tolist() if array.ndim > 1 else round(float(array.mean()), 4)


def _plots(out_dir: Path, reference: MelodySet, sets: list[MelodySet]) -> None:
    for feature in FEATURES:
        series = {reference.name: np.asarray(reference.values[feature.name], dtype=float)}
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
    """The report as a page a person reads at a glance: tables first, then the pictures."""
    names = list(results["sets"])
    reference = results["reference"]
    lines = [
        f"# Melody quality report — {results['model']}",
        "",
        f"{results['n']} melodies per set, each seeded with the first bar (and upbeat) of a "
        "held-out song and as long as that song, in its meter and key. Each cell: the set's mean "
        f"(overlap with the {reference}, 1 = same distribution). `training songs` is the "
        "ceiling: real songs compared with real songs.",
        "",
        f"| feature | {reference} | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for feature in FEATURES:
        row = [feature.label, _fmt(results["reference_means"][feature.name])]
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
        "| cadence chosen by the model (not by the last-beat rule) | | "
        + " | ".join(_share(results["sets"][n]["model_chose_cadence"]) for n in names)
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
        *_form_tables(results),
        *_sweep_tables(results),
    ]
    if "listening_page" in results:
        lines += [
            "",
            f"Look and listen: [{results['listening_page']}]({results['listening_page']})",
        ]
    lines += [""] + [f"![{ft.label}]({ft.name}.png)" for ft in FEATURES]
    return "\n".join(lines) + "\n"


FORM_LABELS = {"count": "melodies", "exact_length": "exact requested length"} | {
    figure.name: figure.label for figure in FORM_FIGURES
}


def _form_tables(results: dict) -> list[str]:
    form = results["form"]
    names = list(form)
    lines = [
        "## Form, on each melody's own bar grid",
        "",
        "| all meters | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for figure, label in FORM_LABELS.items():
        lines.append(
            f"| {label} | " + " | ".join(_form_cell(form[n]["all"], figure) for n in names) + " |"
        )
    for meter in FORM_METERS:
        lines += ["", f"| {meter} | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for figure, label in FORM_LABELS.items():
            cells = " | ".join(_form_cell(form[n][meter], figure) for n in names)
            lines.append(f"| {label} | {cells} |")
    return [*lines, ""]


def _sweep_tables(results: dict) -> list[str]:
    sweeps = results["sweeps"]
    meters = list(sweeps["length"])
    lines = [
        f"## Every length and meter (opening C4 D4 E4, temp {sweeps['temperature']:g}, "
        "12 melodies each): exact length (cadential ending)",
        "",
        "| bars= | " + " | ".join(meters) + " |",
        "|---|" + "---|" * len(meters),
    ]
    for bars in next(iter(sweeps["length"].values())):
        cells = [
            f"{sweeps['length'][m][bars]['exact_length']:.0%} "
            f"({sweeps['length'][m][bars]['cadence']:.0%})"
            for m in meters
        ]
        lines.append(f"| {bars} | " + " | ".join(cells) + " |")
    grid = sweeps["grid_3_4"]
    cold = sweeps["distinct_at_min_temperature"]
    every = sweeps.get("every_length", {})
    lines += [
        "",
        "- Every `bars=` from 4 to 32, three melodies each: "
        + ", ".join(
            f"{meter} {data['exact_length']:.0%} exact ({data['melodies']})"
            for meter, data in every.items()
        )
        + ".",
        f"- C4 D4 E4 in 3/4, 50 melodies: {grid['bars_on_the_grid']:.1%} of bars follow the 3/4 "
        f"grid (nothing held into them), {grid['bars_start_with_note']:.1%} start with a note.",
        f"- At temp={cold['temperature']:g}, the lowest allowed: {cold['distinct']} different "
        f"melodies from {cold['of']} seeds.",
    ]
    repeats = sweeps.get("repeats_16")
    if repeats:
        real = repeats["real_first_16_bars"]
        lines.append(
            f"- 16-bar melodies from held-out openings: {repeats['generated']:.1%} of bars repeat "
            f"an earlier bar (real songs' first 16 bars: "
            f"{'—' if real is None else f'{real:.1%}'}, {repeats['real_songs']} songs)."
        )
    heard = results.get("pickup_heard", {})
    if heard:
        lines.append(
            "- Upbeat heard from the opening alone: "
            + ", ".join(
                f"{name}: {_share(data['right'])} right ({data['songs']} songs)"
                for name, data in heard.items()
            )
            + "."
        )
    return lines


def _form_cell(figures: dict, name: str) -> str:
    value = figures.get(name)
    if value is None:
        return "—"
    return f"{value:.0f}" if name == "count" else f"{value:.1%}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _copies(data: dict) -> str:
    if data["longest_copy_median"] is None:
        return "—"
    return f"{data['longest_copy_median']:.0f} ({data['longest_copy_max']})"


def _fmt(value) -> str:
    if isinstance(value, list):
        return "plot"
    return f"{value:.2f}"
