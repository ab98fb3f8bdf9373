"""Report features on hand-made melodies with known answers, the overlap measure, and the
whole report end to end on a tiny model."""

import math

import numpy as np
import pytest

from generator.encoding import Event, events_to_tokens
from generator.report import features as f
from generator.report.overlap import feature_overlap, overlap_area

C_MAJOR_SCALE = events_to_tokens(Event(p, 4) for p in (60, 62, 64, 65, 67, 69, 71, 72))


def test_c_major_scale_has_the_known_answers():
    assert f.in_scale_rate(C_MAJOR_SCALE, 0, "major") == 1.0
    assert f.pitch_range(C_MAJOR_SCALE) == 12
    assert f.distinct_pitch_classes(C_MAJOR_SCALE) == 7
    # eight notes, C twice: entropy of (2/8, 1/8 × 6)
    expected = -(0.25 * math.log2(0.25) + 6 * 0.125 * math.log2(0.125))
    assert f.pitch_class_entropy(C_MAJOR_SCALE) == pytest.approx(expected)
    assert f.interval_histogram(C_MAJOR_SCALE).tolist() == [0, 1, 0, 0, 0]  # all steps
    assert f.duration_histogram(C_MAJOR_SCALE)[f.DURATION_LABELS.index("1/4")] == 1.0
    assert f.ends_on_tonic(C_MAJOR_SCALE, 0)
    assert not f.ends_on_tonic(C_MAJOR_SCALE, 9)
    assert f.pitch_class_histogram(C_MAJOR_SCALE, 0)[0] == 0.25


def test_chromatic_notes_leaps_and_repeats():
    tokens = events_to_tokens([Event(60, 4), Event(61, 4), Event(None, 4), Event(73, 4)] * 2)
    assert f.in_scale_rate(tokens, 0, "major") == pytest.approx(1 / 3)  # C in, C# and C#5 out
    assert f.in_scale_rate(events_to_tokens([Event(68, 4)]), 9, "minor") == 1.0  # G# in A minor
    histogram = f.interval_histogram(tokens)
    assert histogram[f.INTERVAL_BINS.index("leap")] == pytest.approx(3 / 5)
    assert f.repeated_bar_share(tokens) == 0.5  # the second bar repeats the first


def test_reference_mode_tells_c_major_from_a_minor():
    a_minor = events_to_tokens(Event(p, 4) for p in (69, 72, 76, 74, 72, 71, 69, 64, 69))
    assert (
        f.reference_mode(C_MAJOR_SCALE + events_to_tokens([Event(67, 4), Event(60, 8)])) == "major"
    )
    assert f.reference_mode(a_minor) == "minor"


def test_longest_copy_finds_verbatim_runs_only():
    training = [("60", "_", "62", "_", "64", "_", "65", "_"), ("67", "_", "_", "_", "72")]
    finder = f.CopyFinder(training)
    assert finder.longest_copy(("64", "_", "65", "_", "67")) == 4
    assert finder.longest_copy(("50", "51")) == 0
    assert finder.longest_copy(("65", "_", "67", "_")) == 2  # no run spans two training songs
    assert finder.longest_copy(training[0]) == 8


def test_overlap_of_a_distribution_with_itself_is_one_and_of_distant_ones_zero():
    rng = np.random.default_rng(0)
    sample = rng.normal(size=500)
    assert overlap_area(sample, sample) == pytest.approx(1.0, abs=1e-6)
    assert overlap_area(sample, sample + 50) < 0.01
    near = overlap_area(sample, rng.normal(size=500))
    assert 0.85 < near <= 1.0
    same_set = [rng.normal(size=3) for _ in range(60)]
    other_set = [rng.normal(loc=5, size=3) for _ in range(60)]
    assert feature_overlap(same_set, same_set) > 0.8
    assert feature_overlap(same_set, other_set) < 0.1


def test_report_runs_end_to_end(tiny_engine, few_songs_dir, tmp_path):
    from generator.corpus import preprocess
    from generator.report.build import FEATURES, build_report

    corpus = preprocess(few_songs_dir, progress=False)
    results = build_report(
        tiny_engine,
        corpus,
        n=6,
        temperatures=[0.7, 1.0],
        out_dir=tmp_path / "report",
        seed=1,
        progress=False,
    )
    assert set(results["sets"]) == {"training songs", "temp 0.7", "temp 1"}
    for data in results["sets"].values():
        assert set(data["overlap"]) == {ft.name for ft in FEATURES}
        assert all(0 <= v <= 1 for v in data["overlap"].values())
    assert results["recommended_temperature"] in (0.7, 1.0)
    written = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"index.md", "report.json"} | {f"{ft.name}.png" for ft in FEATURES} <= written
    assert (tmp_path / "report" / "intervals.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "report" / "index.md").read_text()
    assert "Recommended default temperature" in page and "![melodic intervals]" in page
