import json

import pytest
from click.testing import CliRunner
from music21 import converter

from bot.cli import main


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["prepare"],
        ["train"],
        ["evaluate"],
        ["generate"],
        ["info"],
        ["report"],
        ["chat"],
        ["run"],
        ["discord"],
        ["telegram"],
        ["backup"],
        ["health"],
    ],
)
def test_every_command_has_help(runner, command):
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_train_never_overwrites_a_model_unless_told(runner, tmp_path):
    from tests.conftest import SHIPPED_MODEL

    assert "models/esac-lstm" not in runner.invoke(main, ["train", "--help"]).output
    before = (SHIPPED_MODEL / "model.keras").stat().st_mtime_ns
    refused = runner.invoke(main, ["train", "--out", str(SHIPPED_MODEL), "--epochs", "1"])
    assert refused.exit_code != 0 and "already holds a model" in refused.output
    assert "--overwrite" in refused.output
    assert (SHIPPED_MODEL / "model.keras").stat().st_mtime_ns == before


def test_generate_writes_midi_and_musicxml(runner, tmp_path):
    midi, xml = tmp_path / "out.mid", tmp_path / "out.musicxml"
    result = runner.invoke(
        main,
        ["generate", "C4 D4 E4 temp=0.7 seed=5 bars=4", "-o", str(midi), "--musicxml", str(xml)],
    )
    assert result.exit_code == 0, result.output
    notes = list(converter.parse(midi).flatten().notes)
    assert [n.pitch.nameWithOctave for n in notes[:3]] == ["C4", "D4", "E4"]
    assert converter.parse(xml).flatten().notes
    assert "redo with: C4 D4 E4 temp=0.7 bars=4 seed=5" in result.output
    assert "key C, 4 bars of 4/4" in result.output


def test_generate_says_the_real_length_meter_and_upbeat(runner, tmp_path):
    midi = tmp_path / "waltz.mid"
    request = "G4:1 C5 E5 G5 meter=3/4 pickup=1 key=C bars=8 seed=3"
    result = runner.invoke(main, ["generate", request, "-o", str(midi)])
    assert result.exit_code == 0, result.output
    assert "8 bars of 3/4 after a quarter-note upbeat" in result.output
    notes = converter.parse(midi).flatten().notes
    assert notes[0].offset == 0  # the upbeat sounds at once, not after a bar of silence
    end = max(n.offset + n.quarterLength for n in notes)
    assert end == pytest.approx(1 + 8 * 3)  # in quarter notes: the upbeat and 8 bars of 3/4


def test_bad_request_is_a_friendly_error_not_a_traceback(runner):
    result = runner.invoke(main, ["generate", "C4 temp=9"])
    assert result.exit_code == 1
    assert "temp= must be at least 0.5 and at most 2" in result.output
    assert "Traceback" not in result.output


def test_missing_model_is_reported(runner, tmp_path):
    result = runner.invoke(main, ["generate", "C4", "--model", str(tmp_path)])
    assert result.exit_code == 1
    assert "no model at" in result.output


def test_info_and_evaluate(runner, tiny_model_dir, few_songs_dir):
    info = runner.invoke(main, ["info", "--model", str(tiny_model_dir)])
    assert info.exit_code == 0 and "bits/step" in info.output
    result = runner.invoke(
        main, ["evaluate", "--data", str(few_songs_dir), "--model", str(tiny_model_dir)]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output.strip().splitlines()[-1])
    assert scores["lstm"]["songs"] > 30 and scores["lstm"]["nll_bits_per_step"] > 0
    assert scores["ngram5"]["steps"] == scores["lstm"]["steps"]  # the same steps, side by side


def test_the_command_line_starts_without_numpy_so_blas_is_pinned_first():
    """bot.cli sets one BLAS thread per process; that only works before NumPy is imported."""
    import subprocess
    import sys

    probe = "import sys, bot.cli; print('numpy' in sys.modules, 'music21' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_log_lines_and_their_tracebacks_never_show_a_token():
    import logging
    import sys

    from bot.cli import _SecretsHidden

    formatter = _SecretsHidden("%(levelname)s %(message)s", ["123:SECRET", ""])
    try:
        raise ValueError("The token `123:SECRET` was rejected")
    except ValueError:
        record = logging.LogRecord(
            "melodybot", logging.ERROR, __file__, 1, "starting with %s", ("123:SECRET",), None
        )
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "SECRET" not in line
    assert line.startswith("ERROR starting with [token hidden]")
    assert line.endswith("ValueError: The token `[token hidden]` was rejected")
