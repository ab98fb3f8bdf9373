"""Where each step sits in the song's form: meter, position in the bar, phrase group, distance
to the end, and what was played one and two bars back.

The network reads these beside each step (the way Magenta's Lookback RNN reads the position in
the bar and the events a bar back), so it knows the meter it composes in, where the strong beats
are and how far away the last bar is. One :class:`FormTracker` computes them for training (over a
whole song) and for generation (one step at a time as the melody grows), so the two can never
disagree about what a position means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Meter:
    """A meter the model knows: its bar in 16th steps and where a final note may fall."""

    name: str
    steps_per_bar: int
    cadence_positions: tuple[int, ...]  # strong beats of a bar (steps from the bar line)


MODEL_METERS: tuple[Meter, ...] = (
    Meter("2/4", 8, (0,)),
    Meter("3/4", 12, (0,)),
    Meter("4/4", 16, (0, 8)),
    Meter("3/8", 6, (0,)),
    Meter("6/8", 12, (0, 6)),
)
METER_BY_NAME = {m.name: m for m in MODEL_METERS}
# Meters written as the user asks but composed on a model meter with the same bar and beats.
NOTATED_AS = {"2/2": "4/4"}
REQUESTABLE_METERS = (*METER_BY_NAME, *NOTATED_AS)
MAX_BAR_STEPS = max(m.steps_per_bar for m in MODEL_METERS)

# The context columns fed to the network beside each step, in this order.
CONTEXT_COLUMNS = ("metric", "remaining", "group", "repeat", "back_1", "back_2")
METRIC_VALUES = len(MODEL_METERS) * MAX_BAR_STEPS  # (meter, position in bar), jointly
REMAINING_VALUES = 8  # bars left: 0 (the song is over), 1 (last bar), 2, 3, 4, 5–8, 9–16, more
GROUP_VALUES = 4  # bar number within a four-bar group (phrases are mostly 2 or 4 bars long)
REPEAT_VALUES = 4  # does the bar so far repeat the bar one back (1) / two back (2)?


def model_meter(name: str) -> Meter:
    """The model meter a requested meter is composed on (``2/2`` → the ``4/4`` grid)."""
    return METER_BY_NAME[NOTATED_AS.get(name, name)]


def normalise_meter(numerator: int, denominator: int) -> tuple[str, Fraction] | None:
    """A notated meter as one the model knows, with the factor its durations scale by.

    ESAC writes many songs in long values (4/2, 3/1, 6/4 …); halving or quartering them gives the
    same music in the usual 2/4, 3/4, 4/4, 3/8 or 6/8, so the model learns one grid per meter
    instead of several time scales of it. None for meters outside the model's set (5/4, 9/8 …).
    """
    if numerator in (2, 3, 4) and denominator in (1, 2, 4):
        return f"{numerator}/4", Fraction(denominator, 4)
    if numerator == 3 and denominator == 8:
        return "3/8", Fraction(1)
    if numerator == 6 and denominator in (1, 2, 4, 8):
        return "6/8", Fraction(denominator, 8)
    return None


def remaining_bucket(bars_left: int) -> int:
    if bars_left <= 4:
        return max(bars_left, 0)
    return 5 if bars_left <= 8 else 6 if bars_left <= 16 else 7


@dataclass(frozen=True)
class Layout:
    """The bar grid of one melody: meter, upbeat (pickup) length and total length in steps."""

    meter: Meter
    pickup: int
    length: int

    @property
    def bar_steps(self) -> int:
        return self.meter.steps_per_bar

    def bar_of(self, k: int) -> int:
        """Bar number of step ``k``: the pickup is bar -1, the first full bar is bar 0."""
        return (k - self.pickup) // self.bar_steps

    def position_of(self, k: int) -> int:
        return (k - self.pickup) % self.bar_steps

    @property
    def last_bar(self) -> int:
        return self.bar_of(self.length - 1)

    def bar_start(self, k: int) -> int:
        return max(self.pickup + self.bar_of(k) * self.bar_steps, 0)

    def final_bar_cadence_steps(self) -> list[int]:
        """Steps of the last bar on which the final note may start (its strong beats)."""
        start = self.pickup + self.last_bar * self.bar_steps
        return [start + p for p in self.meter.cadence_positions if 0 <= start + p < self.length]


class FormTracker:
    """Context ids for each step of one melody, computed in order as the melody grows.

    ``history`` holds the step ids (the model's vocabulary) of the melody so far; ``context(k)``
    describes step ``k``, the one about to be predicted, from ``history[:k]`` only.
    """

    def __init__(self, layout: Layout, filler_id: int):
        self.layout = layout
        self.filler = filler_id  # stands for "nothing there" one or two bars before the start
        self.meter_index = MODEL_METERS.index(layout.meter)
        self._same = [False, False]  # current bar so far equals the bar one / two back
        self._bar_start = -1

    def context(self, k: int, history: Sequence[int]) -> tuple[int, int, int, int, int, int]:
        layout = self.layout
        bar = layout.bar_steps
        start = layout.bar_start(k)
        if start != self._bar_start:  # a new bar: it repeats a bar back if that bar exists
            self._bar_start = start
            self._same = [start - bar >= 0, start - 2 * bar >= 0]
        elif k > start:  # one more step of this bar is known: does it still match?
            last = history[k - 1]
            for back in (1, 2):
                if self._same[back - 1]:
                    self._same[back - 1] = last == history[k - 1 - back * bar]
        metric = self.meter_index * MAX_BAR_STEPS + layout.position_of(k)
        bars_left = layout.last_bar - layout.bar_of(k) + 1 if k < layout.length else 0
        repeat = int(self._same[0]) + 2 * int(self._same[1])
        back_1 = history[k - bar] if k - bar >= 0 else self.filler
        back_2 = history[k - 2 * bar] if k - 2 * bar >= 0 else self.filler
        return (
            metric,
            remaining_bucket(bars_left),
            layout.bar_of(k) % GROUP_VALUES,
            repeat,
            back_1,
            back_2,
        )

    def repeat_in_progress(self, k: int, history: Sequence[int]) -> int | None:
        """The step that keeps the bar under way equal to the bar one back (else two back), once
        the bar has begun and so far matches it; None when no repeat is under way.

        Call after :meth:`context` for the same ``k``. The sampler may favour this step so that a
        bar the model began to repeat is completed, as folk songs complete them.
        """
        if k == self.layout.bar_start(k):
            return None  # a new bar: whether to repeat is the model's own choice
        bar = self.layout.bar_steps
        for back in (1, 2):
            if self._same[back - 1] and k - back * bar >= 0:
                return history[k - back * bar]
        return None


def song_context(ids: Sequence[int], layout: Layout, filler_id: int) -> np.ndarray:
    """Context rows for steps 0 … len(ids) of a whole song (the last one predicts its end)."""
    tracker = FormTracker(layout, filler_id)
    rows = [tracker.context(k, ids) for k in range(len(ids) + 1)]
    return np.array(rows, dtype=np.int32)
