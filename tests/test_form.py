"""The form context the model reads: positions, bars left, groups and lookback, across bar lines."""

import numpy as np

from generator import form
from generator.form import FormTracker, Layout, normalise_meter, song_context

THREE_FOUR = form.METER_BY_NAME["3/4"]


def test_positions_bars_left_and_groups_across_bar_lines_with_an_upbeat():
    layout = Layout(THREE_FOUR, pickup=4, length=4 + 3 * 12)  # upbeat of a quarter, 3 bars
    rows = song_context(list(range(100, 100 + layout.length)), layout, filler_id=0)
    metric, remaining, group = rows[:, 0], rows[:, 1], rows[:, 2]
    meter_base = form.MODEL_METERS.index(THREE_FOUR) * form.MAX_BAR_STEPS
    assert (metric[:4] - meter_base).tolist() == [8, 9, 10, 11]  # the upbeat ends the bar
    assert (metric[4:16] - meter_base).tolist() == list(range(12))  # bar 1 from its downbeat
    assert metric[16] - meter_base == 0 and metric[28] - meter_base == 0
    assert remaining[:4].tolist() == [4] * 4  # upbeat: 3 bars after it, counted with its own
    assert remaining[4].tolist() == 3 and remaining[16] == 2 and remaining[39] == 1
    assert remaining[40] == 0  # the step after the last is the song's end
    assert group[:4].tolist() == [3] * 4 and group[4] == 0 and group[16] == 1 and group[28] == 2


def test_lookback_reads_one_and_two_bars_back_and_the_filler_before_the_start():
    layout = Layout(form.METER_BY_NAME["2/4"], pickup=0, length=24)
    ids = list(range(1, 25))
    rows = song_context(ids, layout, filler_id=-1)
    back_1, back_2 = rows[:, 4], rows[:, 5]
    assert back_1[:8].tolist() == [-1] * 8 and back_1[8] == ids[0] and back_1[23] == ids[15]
    assert back_2[:16].tolist() == [-1] * 16 and back_2[16] == ids[0]


def test_repeat_flags_follow_the_bar_so_far():
    layout = Layout(form.METER_BY_NAME["2/4"], pickup=0, length=32)
    bar_a, bar_b = [5, 1, 1, 1, 6, 1, 7, 1], [8, 1, 1, 1, 9, 1, 1, 1]
    ids = bar_a + bar_a + bar_b + bar_a  # bar 2 repeats bar 1; bar 4 repeats bar 2 back
    repeat = song_context(ids, layout, filler_id=0)[:, 3]
    assert repeat[:8].tolist() == [0] * 8  # nothing one bar back yet
    assert repeat[8:16].tolist() == [1] * 8  # bar 2 keeps matching bar 1
    assert repeat[16] == 3 and repeat[17] == 0  # bar 3 starts different from both
    assert repeat[24] == 3 and repeat[25] == 2 and repeat[31] == 2  # bar 4 matches two back only


def test_step_by_step_tracking_equals_the_whole_song_pass():
    layout = Layout(form.METER_BY_NAME["6/8"], pickup=2, length=50)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 4, size=50).tolist()
    whole = song_context(ids, layout, filler_id=0)
    tracker = FormTracker(layout, filler_id=0)
    grown: list[int] = []
    for k in range(51):
        assert tracker.context(k, grown) == tuple(whole[k])
        if k < 50:
            grown.append(ids[k])


def test_long_value_meters_are_rescaled_and_odd_ones_refused():
    assert normalise_meter(4, 2) == ("4/4", 0.5)
    assert normalise_meter(3, 1) == ("3/4", 0.25)
    assert normalise_meter(6, 4) == ("6/8", 0.5)
    assert normalise_meter(3, 8) == ("3/8", 1)
    assert normalise_meter(5, 4) is None and normalise_meter(9, 8) is None


def test_cadence_steps_are_the_strong_beats_of_the_last_bar():
    layout = Layout(form.METER_BY_NAME["4/4"], pickup=2, length=2 + 4 * 16)
    assert layout.final_bar_cadence_steps() == [50, 58]
    assert Layout(THREE_FOUR, 0, 36).final_bar_cadence_steps() == [24]


def test_the_repeat_under_way_names_the_step_that_completes_it():
    layout = Layout(form.METER_BY_NAME["2/4"], pickup=0, length=32)
    bar_a, bar_b = [5, 1, 1, 1, 6, 1, 7, 1], [8, 1, 1, 1, 9, 1, 1, 1]
    ids = bar_a + bar_a + bar_b + bar_a
    tracker = FormTracker(layout, filler_id=0)
    under_way = []
    for k in range(32):
        tracker.context(k, ids)
        under_way.append(tracker.repeat_in_progress(k, ids))
    assert under_way[:8] == [None] * 8  # nothing to repeat in the first bar
    assert under_way[8] is None  # a bar's first step is the model's own choice
    assert under_way[9:16] == bar_a[1:]  # bar 2 repeats bar 1: its next steps are bar 1's
    assert under_way[17:24] == [None] * 7  # bar 3 left both bars at its first step
    assert under_way[25:32] == bar_a[1:]  # bar 4 follows bar 2, two bars back
