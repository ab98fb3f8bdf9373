"""Faults an operator meets, injected into real `melodybot` processes and real SQLite files:
each ends the way a user and an operator would expect, with a clear message and nothing lost.

The faults that need a platform's client library or a bot process with a loopback platform are
tested beside it; where each lives:

- platform connection lost for good (Discord 4004/4014): test_discord_bot
  ``test_a_gateway_closed_for_good_stops_the_bot_and_its_health``
- SIGTERM under load, kill -9 mid-melody and the restart that sends it, a full disk, a rejected
  token: test_deployment
- a refused typing call, a melody the platform will not take, files over the upload limit, passing
  5xx/429 answers, a melody left unsent by a killed process: test_discord_bot, test_telegram_bot
- a hung or failing renderer: test_render; retention and abandoned melodies: test_housekeeping
- re-sends under bans and limits, flooding, huge ids, odd whitespace and surrogates: test_bot_core
- ten minutes of all of them at once: ``python -m bench.bench_soak`` (BENCHMARKS.md)
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.entry_point import MELODYBOT, checkout_env


def _chat(data_dir: Path, lines: str, model_dir: Path) -> subprocess.CompletedProcess:
    env = checkout_env(os.environ) | {
        "MELODYBOT_AUDIO": "false",
        "MELODYBOT_MODEL_DIR": str(model_dir),
    }
    return subprocess.run(
        [*MELODYBOT, "chat", "--data-dir", str(data_dir)],
        input=lines,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def database_with_a_melody(tmp_path_factory, tiny_model_dir) -> Path:
    data = tmp_path_factory.mktemp("healthy")
    done = _chat(data, "!melody C4 D4 E4 seed=1 bars=2\n", tiny_model_dir)
    assert done.returncode == 0, done.stderr
    path = data / "melodybot.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
    return path


def _damage_table_page(path: Path) -> None:
    with sqlite3.connect(path) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'generations'"
        ).fetchone()
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size + 8)
        file.write(bytes(range(200)))


def _damage_header(path: Path) -> None:
    with path.open("r+b") as file:
        file.write(b"not a database!!")


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 3)


@pytest.mark.parametrize("damage", [_damage_table_page, _damage_header, _truncate])
def test_a_damaged_database_is_refused_at_start_with_the_way_back(
    damage, database_with_a_melody, tmp_path, tiny_model_dir
):
    data = tmp_path / "data"
    data.mkdir()
    path = data / "melodybot.sqlite3"
    path.write_bytes(database_with_a_melody.read_bytes())
    damage(path)
    damaged = path.read_bytes()
    result = _chat(data, "!history\n", tiny_model_dir)
    assert result.returncode == 1
    assert "is damaged" in result.stderr and "melodybot backup" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert path.read_bytes() == damaged  # left exactly as it was, for whoever repairs it


def test_a_data_folder_that_cannot_be_made_is_a_clear_error(tmp_path, tiny_model_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _chat(blocker / "data", "!history\n", tiny_model_dir)
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


def test_kill_9_mid_render_leaves_no_renderer_running_and_no_scratch_behind(
    tmp_path, tiny_model_dir
):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    pid_file = tmp_path / "renderer.pid"
    renderer = fake_bin / "mscore3"  # a MuseScore that hangs, first on PATH: the fault
    renderer.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 300\n")
    renderer.chmod(0o755)
    data = tmp_path / "data"
    env = checkout_env(os.environ) | {
        "MELODYBOT_AUDIO": "false",
        "MELODYBOT_MODEL_DIR": str(tiny_model_dir),
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
    }
    bot = subprocess.Popen(
        [*MELODYBOT, "chat", "--data-dir", str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        bot.stdin.write(b"!melody C4 D4 E4 bars=2\n")
        bot.stdin.flush()
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        renderer_pid = int(pid_file.read_text())
        assert [p for p in (data / "tmp").rglob("melodybot-mscore-*")]  # mid-render
        bot.kill()  # SIGKILL: no clean-up code of ours runs
        bot.wait(10)
    finally:
        if bot.poll() is None:
            bot.kill()
    deadline = time.monotonic() + 5
    while _alive(renderer_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(renderer_pid)  # it died with the bot
    with sqlite3.connect(data / "melodybot.sqlite3") as db:
        # the MIDI went out before the picture was drawn: the melody is the user's already
        assert db.execute("SELECT status FROM generations").fetchall() == [("done",)]
    assert _chat(data, "!history\n", tiny_model_dir).returncode == 0  # the next start sweeps
    assert list((data / "tmp").iterdir()) == []
    with sqlite3.connect(data / "melodybot.sqlite3") as db:  # a melody delivered stays counted
        assert db.execute(
            "SELECT status, delivered_at IS NOT NULL FROM generations"
        ).fetchall() == [("done", 1)]
        assert db.execute("SELECT counts FROM usage").fetchall() == [(1,)]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_two_bots_sharing_a_data_folder_never_sweep_each_others_scratch(tmp_path):
    from bot.scratch import Scratch

    first = Scratch(tmp_path / "tmp")
    (first.path / "score.musicxml").write_text("in use")
    second = Scratch(tmp_path / "tmp")  # starts while the first is alive: sweeps nothing of it
    assert (first.path / "score.musicxml").exists()
    second.close()
    first.close()
    assert list((tmp_path / "tmp").iterdir()) == []
