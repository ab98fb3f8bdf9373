"""Report features on hand-made melodies with known answers, the overlap measure, and the
whole report end to end on a tiny model."""

import math

import numpy as np
import pytest

from generator import form
from generator.encoding import Event, events_to_tokens
from generator.form import Layout
from generator.training.report import features as f
from generator.training.report.form_checks import form_figures
from generator.training.report.overlap import feature_overlap, overlap_area

C_MAJOR_SCALE = events_to_tokens(Event(p, 4) for p in (60, 62, 64, 65, 67, 69, 71, 72))
FOUR_FOUR = Layout(form.METER_BY_NAME["4/4"], 0, 32)


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
    assert f.repeated_bar_share(tokens, FOUR_FOUR) == 0.5  # the second bar repeats the first


def test_bar_features_read_the_melody_on_its_own_meter_and_upbeat():
    # 3/4 with a quarter upbeat: G | C E G | C'. held over the bar | line … ending on C
    waltz = Layout(form.METER_BY_NAME["3/4"], pickup=4, length=4 + 3 * 12)
    tokens = events_to_tokens(
        [Event(67, 4), Event(60, 4), Event(64, 4), Event(67, 4), Event(72, 16), Event(60, 8)]
    )
    assert len(tokens) == waltz.length
    assert f.full_bars(tokens, waltz)[0] == tuple(tokens[4:16])
    assert f.bars_starting_with_note(tokens, waltz) == pytest.approx(2 / 3)  # bar 3 is held into
    assert f.notes_tied_over_bar_lines(tokens, waltz) == pytest.approx(1 / 6)
    assert f.ends_at_bar_line(tokens, waltz)
    assert not f.cadential_ending(tokens, waltz, 0)  # C on beat 2 of the last bar: weak
    strong_end = events_to_tokens([Event(67, 4), Event(60, 12), Event(64, 12), Event(60, 12)])
    assert f.cadential_ending(strong_end, waltz, 0) and not f.cadential_ending(strong_end, waltz, 7)
    # read as 4/4 with no upbeat, the same notes cross bar lines differently
    assert f.notes_tied_over_bar_lines(tokens, Layout(FOUR_FOUR.meter, 0, 40)) != pytest.approx(
        1 / 6
    )
    # long notes (half a bar or more): C' in bar 2 (even), the final C in bar 3
    assert f.long_notes_in_even_bars(tokens, waltz) == 0.5


def test_form_figures_of_a_set_count_exact_lengths():
    layout = Layout(form.METER_BY_NAME["2/4"], 0, 16)
    melody = events_to_tokens([Event(60, 4), Event(62, 4), Event(60, 8)])
    figures = form_figures([melody, melody[:12]], [layout, layout], [0, 0], requested=[16, 16])
    assert figures["exact_length"] == 0.5 and figures["count"] == 2
    assert figures["repeated_bars"] == 0.0 and figures["ends_on_tonic"] == 1.0


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
    from generator.training.corpus import preprocess
    from generator.training.report.build import FEATURES, build_report

    corpus = preprocess(few_songs_dir, progress=False)
    results = build_report(
        tiny_engine,
        corpus,
        n=6,
        temperatures=[0.7, 1.0],
        out_dir=tmp_path / "report",
        seed=1,
        progress=False,
        listen=2,
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
    for name in ("exact requested length", "cadential ending", "long notes in even bars"):
        assert name in page
    assert "## Every length and meter" in page and "| 3/4 |" in page
    form_all = results["form"]["temp 1"]["all"]
    assert form_all["exact_length"] == 1.0 and form_all["ends_at_bar_line"] == 1.0
    for meter in ("2/4", "3/4", "4/4", "6/8"):
        assert all(v["exact_length"] == 1.0 for v in results["sweeps"]["length"][meter].values())
        assert results["sweeps"]["every_length"][meter]["exact_length"] == 1.0
    _listening_page_loads_in_a_browser(tmp_path / "report" / results["listening_page"])


def _listening_page_loads_in_a_browser(page) -> None:
    """Every score picture decodes and every audio player can play, in real Chromium."""
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import headless_chromium

    with headless_chromium() as browser:
        browser.get(page.as_uri())
        ready = (
            "const imgs = [...document.images], players = [...document.querySelectorAll('audio')];"
            "return [imgs.length, players.length,"
            " imgs.filter(i => i.complete && i.naturalWidth > 300).length,"
            " players.filter(a => a.readyState >= 1 && a.duration > 1).length];"
        )
        WebDriverWait(browser, 20).until(
            lambda b: (lambda n: n[0] == n[2] and n[1] == n[3])(b.execute_script(ready))
        )
        images, players, _, _ = browser.execute_script(ready)
        assert images == players == 4  # two generated melodies beside the two real ones
        labels = browser.execute_script(
            "return [...document.querySelectorAll('h2 span')].map(s => s.textContent)"
        )
        assert labels == ["generated", "real"] * 2


def test_report_command_compares_with_a_reference_folder(tiny_model_dir, few_songs_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from melodybot.cli import main

    reference = tmp_path / "reference"
    reference.mkdir()
    for path in sorted(few_songs_dir.glob("*.krn"))[:12]:
        (reference / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "report"
    arguments = ["report", "--model", str(tiny_model_dir), "--data", str(few_songs_dir)]
    arguments += ["--reference", str(reference), "--n", "4", "--temp", "1", "--listen", "0"]
    result = CliRunner().invoke(main, [*arguments, "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "report.json").read_text())
    assert results["reference"] == "reference songs"
    assert results["form"]["reference songs"]["all"]["count"] == 4  # at most --n of them
    assert "| feature | reference songs |" in (out / "index.md").read_text()
    assert not (out / "listen.html").exists()
