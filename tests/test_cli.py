import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib

import mido
import pytest
from click.testing import CliRunner
from music21 import converter

from melodybot.cli import main
from melodybot.environment import BLAS_THREAD_VARIABLES
from tests.conftest import PROJECT_ROOT, SHIPPED_MODEL
from tests.entry_point import checkout_env

COMMANDS = [
    "prepare",
    "train",
    "evaluate",
    "generate",
    "info",
    "report",
    "chat",
    "run",
    "discord",
    "telegram",
    "worker",
    "queue",
    "backup",
    "migrate-data",
    "health",
]


@pytest.fixture
def runner():
    return CliRunner()


def _failed_clearly(result) -> bool:
    """The command stopped on purpose (click's "Error: …" and exit 1), not on an exception that
    CliRunner caught (which would have been a traceback at a terminal)."""
    return result.exit_code == 1 and isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_every_command_has_help(runner, command):
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def _listed_commands(help_text: str) -> dict[str, str]:
    """The Commands section of a group's help: each name with its summary, wrapped lines joined."""
    listed: dict[str, str] = {}
    name = None
    for line in help_text.split("Commands:\n", 1)[1].splitlines():
        row = re.match(r"^  (\S+)\s+(.*)$", line)
        if row:
            name = row[1]
            listed[name] = row[2]
        elif line.strip() and name:
            listed[name] += " " + line.strip()
    return listed


@pytest.mark.parametrize("columns", [80, 60])
def test_help_lists_every_command_with_its_whole_summary(runner, columns):
    result = runner.invoke(main, ["--help"], terminal_width=columns)
    assert result.exit_code == 0
    listed = _listed_commands(result.output)
    assert sorted(listed) == sorted(COMMANDS)
    for name, summary in listed.items():
        first_paragraph = " ".join(main.commands[name].help.split("\n\n")[0].split())
        assert summary == first_paragraph, name
        assert not summary.endswith("...")


def test_python_m_melodybot_is_the_same_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "melodybot", "--help"],
        capture_output=True,
        text=True,
        env=checkout_env(os.environ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: melodybot ")
    assert sorted(_listed_commands(done.stdout)) == sorted(COMMANDS)


def test_train_never_overwrites_a_model_unless_told(runner, tmp_path):
    assert "models/esac-lstm" not in runner.invoke(main, ["train", "--help"]).output
    before = (SHIPPED_MODEL / "model.keras").stat().st_mtime_ns
    refused = runner.invoke(main, ["train", "--out", str(SHIPPED_MODEL), "--epochs", "1"])
    assert refused.exit_code != 0 and "already holds a model" in refused.output
    assert "--overwrite" in refused.output
    assert (SHIPPED_MODEL / "model.keras").stat().st_mtime_ns == before


def test_train_replaces_a_model_folder_only_with_overwrite(
    runner, tmp_path, tiny_model_dir, few_songs_dir
):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    small = ["--data", str(few_songs_dir), "--out", str(folder), "--epochs", "1", "--units", "8"]
    small += ["--depth", "1", "--embedding", "4", "--window", "32", "--batch-size", "32"]
    refused = runner.invoke(main, ["train", *small])
    assert _failed_clearly(refused) and "already holds a model" in refused.output
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == files  # untouched
    replaced = runner.invoke(main, ["train", *small, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert f"saved {folder}: validation" in replaced.output
    assert (folder / "model.keras").read_bytes() != files["model.keras"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["epochs_run"] == 1 and meta["hyperparameters"]["units"] == 8


def test_the_training_modules_are_those_of_the_train_extra():
    """The modules whose absence means "install the `train` extra" are that extra's own."""
    from packaging.requirements import Requirement

    from melodybot.training_commands import TRAINING_MODULES

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extra = {Requirement(line).name for line in project["optional-dependencies"]["train"]}
    assert extra == TRAINING_MODULES


@pytest.mark.parametrize(
    ("command", "module", "imported_by"),
    [
        ("train", "keras", "generator.training.train"),
        ("prepare", "tqdm", "generator.training.corpus"),
    ],
)
def test_a_training_command_without_the_train_extra_says_what_to_install(
    runner, tmp_path, monkeypatch, command, module, imported_by
):
    """`make run` installs no extra: there the training commands name the extra to install
    rather than end in an import traceback."""
    monkeypatch.setitem(sys.modules, module, None)  # `import keras` now fails as if not installed
    monkeypatch.delitem(sys.modules, imported_by, raising=False)  # so that it is imported anew
    monkeypatch.chdir(tmp_path)  # train's default --out (models/trained) lands here, if at all
    result = runner.invoke(main, [command])
    assert _failed_clearly(result), result.output
    assert f"`melodybot {command}` needs the training tools" in result.output
    assert f"{module} is not installed" in result.output and "make dev" in result.output


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


def test_generate_writes_a_midi_file_of_the_bars_and_meter_asked_for(runner, tmp_path):
    path = tmp_path / "jig.mid"
    request = "C4 E4 G4 meter=6/8 bars=6 pickup=0 seed=2"
    result = runner.invoke(main, ["generate", request, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {path}" in result.output
    midi = mido.MidiFile(path)
    (meter,) = [m for m in midi.tracks[0] if m.type == "time_signature"]
    assert (meter.numerator, meter.denominator) == (6, 8)
    onsets, ends, now = [], [], 0
    for message in midi.tracks[1]:
        now += message.time
        if message.type == "note_on":
            onsets.append((now, message.note))
        elif message.type == "note_off":
            ends.append(now)
    assert [note for _, note in onsets[:3]] == [60, 64, 67]  # the opening, as asked
    assert len(onsets) > 6  # and a melody after it
    bar = midi.ticks_per_beat * 3  # a 6/8 bar: six eighths, three quarter notes
    assert onsets[0][0] == 0 and max(ends) == 6 * bar  # six whole bars, the last note held out
    assert all(sum(m.time for m in track) == 6 * bar for track in midi.tracks)


def test_generate_without_an_output_says_that_nothing_was_written(runner, tmp_path):
    with runner.isolated_filesystem(temp_dir=tmp_path) as folder:
        result = runner.invoke(main, ["generate", "C4 D4 E4 seed=1 bars=2"])
        assert os.listdir(folder) == []
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("60 _ _ _ 62 _ _ _ 64")  # the melody's steps
    assert "no file written: add -o melody.mid to save the MIDI" in result.stderr
    written = runner.invoke(main, ["generate", "C4 D4 E4 seed=1 bars=2", "-o", str(tmp_path / "m")])
    assert "no file written" not in written.output


def test_bad_request_is_a_friendly_error_not_a_traceback(runner):
    result = runner.invoke(main, ["generate", "C4 temp=9"])
    assert result.exit_code == 1
    assert "temp= must be at least 0.5 and at most 2" in result.output
    assert "Traceback" not in result.output
    assert _failed_clearly(result), result.exception


@pytest.mark.parametrize(
    ("request_text", "problem"),
    [
        ("X4 D4", "I don't know the note 'X4'."),
        ("C4 meter=5/4", "meter= takes a folk meter the model knows"),
        ("C4 colour=blue", "Unknown option 'colour='."),
    ],
)
def test_a_bad_request_says_what_is_wrong_and_how_to_ask(runner, tmp_path, request_text, problem):
    out = tmp_path / "never.mid"
    result = runner.invoke(main, ["generate", request_text, "-o", str(out)])
    assert _failed_clearly(result), result.exception
    assert result.stderr.startswith(f"Error: {problem}") and "Try: C4 D4 E4" in result.stderr
    assert result.stdout == "" and not out.exists()


def test_missing_model_is_reported(runner, tmp_path):
    result = runner.invoke(main, ["generate", "C4", "--model", str(tmp_path)])
    assert result.exit_code == 1
    assert "no model at" in result.output


def test_info_shows_the_shipped_model_s_facts(runner):
    meta = json.loads((SHIPPED_MODEL / "meta.json").read_text())
    result = runner.invoke(main, ["info", "--model", str(SHIPPED_MODEL)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    hp, v = meta["hyperparameters"], meta["validation"]
    assert lines["model"] == f"model      {meta['name']} (created {meta['created']})"
    assert f"{meta['data']['songs_used']} songs" in lines["data"]
    assert meta["data"]["hash"][:16] in lines["data"]
    assert f"{hp['depth']}×LSTM({hp['units']})" in lines["network"]
    assert f"vocabulary {len(meta['vocabulary'])}" in lines["network"]
    assert "reads " + ", ".join(meta["form"]["inputs"]) in lines["form"]
    assert f"{v['nll_bits_per_step']:.3f} bits/step" in lines["validation"]
    assert f"({v['songs']} songs)" in lines["validation"]
    assert lines["trained"].startswith(f"trained    {meta['epochs_run']} epochs")


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


def _beat(path, age_s: float) -> None:
    path.write_text(json.dumps({"time": time.time() - age_s, "front_ends": ["telegram"]}))


@pytest.mark.parametrize(
    ("age_s", "code", "said"),
    [(1, 0, "alive: telegram"), (600, 1, "last heartbeat 600 s ago"), (None, 1, "no heartbeat")],
)
def test_health_reads_the_heartbeat_file_it_is_given(runner, tmp_path, age_s, code, said):
    """Fresh, stale, missing: what a container's health check gets from each."""
    heartbeat = tmp_path / "heartbeat.json"
    if age_s is not None:
        _beat(heartbeat, age_s)
    result = runner.invoke(main, ["health", "--heartbeat-file", str(heartbeat)])
    assert result.exit_code == code, result.output
    assert said in result.output


def test_health_reads_the_heartbeat_file_the_environment_names(runner, tmp_path, monkeypatch):
    heartbeat = tmp_path / "beat.json"
    _beat(heartbeat, 1)
    monkeypatch.setenv("MELODYBOT_HEARTBEAT_FILE", str(heartbeat))
    assert runner.invoke(main, ["health"]).exit_code == 0
    stale = tmp_path / "stale.json"
    _beat(stale, 600)
    assert runner.invoke(main, ["health", "--heartbeat-file", str(stale)]).exit_code == 1
    monkeypatch.delenv("MELODYBOT_HEARTBEAT_FILE")
    with runner.isolated_filesystem(temp_dir=tmp_path):  # no .env naming one either
        unset = runner.invoke(main, ["health"])
    assert _failed_clearly(unset) and "--heartbeat-file" in unset.output


def test_commands_run_with_one_blas_thread_set_before_numpy_loads():
    """OpenBLAS reads its thread count when NumPy is first imported, so the root group must set
    it before any command imports NumPy, and importing the CLI must not have imported it."""
    probe = textwrap.dedent(
        """
        import json, os, sys
        from melodybot.cli import main

        names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "TF_CPP_MIN_LOG_LEVEL")
        seen = {"imported": {n: os.environ.get(n) for n in names},
                "loaded": sorted({"numpy", "music21"} & set(sys.modules))}

        @main.command()
        def probe():
            seen["in the command"] = {n: os.environ.get(n) for n in names}
            seen["loaded in the command"] = sorted({"numpy", "music21"} & set(sys.modules))
            print(json.dumps(seen))

        main(["probe"])
        """
    )
    env = {k: v for k, v in checkout_env(os.environ).items() if k not in BLAS_THREAD_VARIABLES}
    env = {k: v for k, v in env.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"MKL_NUM_THREADS": "3"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["imported"] == {
        "OPENBLAS_NUM_THREADS": None,  # importing sets nothing: the group does, when it runs
        "OMP_NUM_THREADS": None,
        "MKL_NUM_THREADS": "3",
        "TF_CPP_MIN_LOG_LEVEL": None,
    }
    assert seen["in the command"] == {
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "3",  # what the environment says wins
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    assert seen["loaded"] == seen["loaded in the command"] == []


def test_log_lines_and_their_tracebacks_never_show_a_token():
    import logging

    from melodybot.logs import SecretsHidden

    formatter = SecretsHidden("%(levelname)s %(message)s", ["123:SECRET", ""])
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
