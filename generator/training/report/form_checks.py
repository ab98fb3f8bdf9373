"""Does a melody have the form that was asked for? Length, bar lines, cadence, repeats, meter.

Each figure reads a melody on its own bar grid (meter and upbeat), so a 3/4 melody is judged in
3/4. :func:`form_figures` gives them for a set of melodies; :func:`run_sweeps` asks the engine for
melodies of every length and meter and reports how exactly they come out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from generator.engine import ENDED_BY_MODEL, Melody, MelodyEngine
from generator.form import Layout
from generator.keys import REFERENCE_PITCH_CLASS
from generator.ranges import MIN_TEMPERATURE
from generator.request import MelodyRequest
from generator.training.corpus import Song
from generator.training.report import features as f

FORM_METERS = ("2/4", "3/4", "4/4", "6/8")
SWEEP_BARS = (4, 8, 16, 32)
EVERY_BARS = range(4, 33)  # the exact-length check covers every length from 4 to 32 bars
SWEEP_OPENING = "C4 D4 E4"


@dataclass(frozen=True)
class FormFigure:
    name: str
    label: str
    measure: Callable[[Sequence[str], Layout, int], float | bool | None]


FORM_FIGURES = (
    FormFigure(
        "ends_at_bar_line", "ends at a bar line", lambda t, lay, k: f.ends_at_bar_line(t, lay)
    ),
    FormFigure("ends_on_tonic", "ends on the tonic", lambda t, lay, k: f.ends_on_tonic(t, k)),
    FormFigure("cadential_ending", "cadential ending", f.cadential_ending),
    FormFigure(
        "repeated_bars", "share of repeated bars", lambda t, lay, k: f.repeated_bar_share(t, lay)
    ),
    FormFigure(
        "bars_start_with_note",
        "bars starting with a note",
        lambda t, lay, k: f.bars_starting_with_note(t, lay),
    ),
    FormFigure(
        "notes_tied_over_bar",
        "notes tied over a bar line",
        lambda t, lay, k: f.notes_tied_over_bar_lines(t, lay),
    ),
    FormFigure(
        "long_notes_in_even_bars",
        "long notes in even bars",
        lambda t, lay, k: f.long_notes_in_even_bars(t, lay),
    ),
)


def form_figures(
    tokens: Sequence[Sequence[str]],
    layouts: Sequence[Layout],
    tonics: Sequence[int],
    requested: Sequence[int] | None = None,
) -> dict[str, float | None]:
    """Mean of every form figure over a set (melodies a figure says nothing about are skipped),
    and, for generated melodies, the share that came out exactly as long as requested."""
    figures: dict[str, float | None] = {"count": float(len(tokens))}
    if requested is not None:
        exact = [len(t) == n for t, n in zip(tokens, requested, strict=True)]
        figures["exact_length"] = float(np.mean(exact)) if exact else None
    for figure in FORM_FIGURES:
        values = [
            figure.measure(t, layout, tonic)
            for t, layout, tonic in zip(tokens, layouts, tonics, strict=True)
        ]
        known = [float(v) for v in values if v is not None]
        figures[figure.name] = float(np.mean(known)) if known else None
    return figures


def melody_figures(melodies: Sequence[Melody]) -> dict[str, float | None]:
    """:func:`form_figures` of composed melodies, each read in its own key and bar grid."""
    return form_figures(
        [m.tokens for m in melodies],
        [m.layout for m in melodies],
        [m.key.tonic.pitchClass for m in melodies],
    )


def song_figures(songs: Sequence[Song], bars: int | None = None) -> dict[str, float | None]:
    """:func:`form_figures` of real songs (their first ``bars`` bars after the upbeat, if given)."""
    return form_figures(
        [
            s.tokens if bars is None else s.tokens[: s.pickup + bars * s.layout.bar_steps]
            for s in songs
        ],
        [s.layout for s in songs],
        [REFERENCE_PITCH_CLASS[s.mode] for s in songs],
    )


def run_sweeps(
    engine: MelodyEngine, temperature: float, seed: int, *, repeats_from: Sequence = ()
) -> dict:
    """Melodies of every asked length and meter from one opening, and the other form checks.

    - ``length``: for each meter and ``bars=`` in :data:`SWEEP_BARS`, 12 melodies; the share
      exactly that long and the share with a cadential ending;
    - ``every_length``: per meter, three melodies of every ``bars=`` in :data:`EVERY_BARS`; the
      share exactly that long;
    - ``grid_3_4``: 50 melodies from a three-note opening in 3/4: bars nothing is held into, and
      bars starting with a note;
    - ``repeats_16``: 16-bar melodies seeded with the first bar of ``repeats_from`` songs;
    - ``distinct_at_min_temperature``: how many of 20 seeds give different melodies at the lowest
      temperature the grammar allows.
    """
    results: dict = {"temperature": temperature, "length": {}}
    for meter in FORM_METERS:
        row = {}
        for bars in SWEEP_BARS:
            requests = [
                MelodyRequest.parse(
                    f"{SWEEP_OPENING} meter={meter} bars={bars} temp={temperature:g} "
                    f"seed={seed * 1000 + i}"
                )
                for i in range(12)
            ]
            melodies = engine.compose_many(requests)
            tokens = [m.tokens for m in melodies]
            exact = [
                len(t) == m.pickup + bars * m.request.steps_per_bar
                for t, m in zip(tokens, melodies, strict=True)
            ]
            cadences = [
                f.cadential_ending(t, m.layout, m.key.tonic.pitchClass)
                for t, m in zip(tokens, melodies, strict=True)
            ]
            row[str(bars)] = {
                "exact_length": float(np.mean(exact)),
                "cadence": float(np.mean(cadences)),
            }
        results["length"][meter] = row

    results["every_length"] = {}
    for meter in FORM_METERS:
        requests = [
            MelodyRequest.parse(
                f"{SWEEP_OPENING} meter={meter} bars={bars} temp={temperature:g} "
                f"seed={seed * 1000 + 100 + i}"
            )
            for bars in EVERY_BARS
            for i in range(3)
        ]
        melodies = engine.compose_all(requests)
        exact = [m.bars == r.bars for m, r in zip(melodies, requests, strict=True)]
        results["every_length"][meter] = {
            "melodies": len(exact),
            "exact_length": float(np.mean(exact)),
        }

    grid = engine.compose_many(
        [
            MelodyRequest.parse(
                f"{SWEEP_OPENING} meter=3/4 bars=8 temp={temperature:g} seed={seed * 1000 + i}"
            )
            for i in range(50)
        ]
    )
    results["grid_3_4"] = {
        "bars_on_the_grid": float(np.mean([f.bars_on_the_grid(m.tokens, m.layout) for m in grid])),
        "bars_start_with_note": float(
            np.mean([f.bars_starting_with_note(m.tokens, m.layout) for m in grid])
        ),
    }
    if repeats_from:
        results["repeats_16"] = _repeats_16(engine, repeats_from, temperature, seed)

    cold = engine.compose_many(
        [
            MelodyRequest.parse(f"{SWEEP_OPENING} temp={MIN_TEMPERATURE:g} seed={i}")
            for i in range(20)
        ]
    )
    results["distinct_at_min_temperature"] = {
        "temperature": MIN_TEMPERATURE,
        "distinct": len({m.tokens for m in cold}),
        "of": len(cold),
    }
    return results


def _repeats_16(engine: MelodyEngine, songs: Sequence, temperature: float, seed: int) -> dict:
    from generator.training.report.build import seed_request

    requests = [
        seed_request(song, temperature, seed * 1_000_003 + i, bars=16)
        for i, song in enumerate(songs)
    ]
    melodies = engine.compose_all(requests)
    generated = [f.repeated_bar_share(m.tokens, m.layout) for m in melodies]
    real = [
        f.repeated_bar_share(song.tokens[: song.pickup + 16 * song.layout.bar_steps], song.layout)
        for song in songs
        if len(song.tokens) >= song.pickup + 16 * song.layout.bar_steps
    ]
    model_cadences = float(np.mean([m.ending == ENDED_BY_MODEL for m in melodies]))
    return {
        "generated": float(np.mean(generated)),
        "real_first_16_bars": float(np.mean(real)) if real else None,
        "real_songs": len(real),
        "melodies": len(melodies),
        "model_chose_cadence": model_cadences,
    }
