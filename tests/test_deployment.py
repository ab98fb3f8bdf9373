"""What can be checked of the deployment without a Docker engine: the files, and the container's
entry command run as a plain process against a temp data folder and a loopback Telegram."""

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, SHIPPED_MODEL
from tests.entry_point import MELODYBOT, checkout_env
from tests.fakes.telegram_api import FakeTelegram


def test_compose_file_has_both_bots_sharing_one_volume():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = {
        name: service
        for name, service in compose["services"].items()
        if service.get("profiles") != ["scale"]
    }
    assert set(services) == {"discord", "telegram"}
    for name, service in services.items():
        assert service["command"] == [name]
        assert service["profiles"] == [name]
        assert service["restart"] == "unless-stopped"
        assert service["volumes"] == ["melodybot-data:/data"]
        assert service["healthcheck"]["test"] == ["CMD", "melodybot", "health"]
        assert service["logging"]["options"]["max-size"]
        assert service["deploy"]["resources"]["limits"]["memory"]
        assert service["env_file"] == ".env"
        assert service["environment"]["MELODYBOT_HEARTBEAT_FILE"] != ""
        assert service["secrets"] == [f"{name}_token"]  # its own token, not the other's
    assert set(compose["secrets"]) == {"discord_token", "telegram_token"}
    assert "melodybot-data" in compose["volumes"]
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"TOKEN\s*[:=]\s*\S", text), "no secrets in the compose file"


def test_compose_scale_profile_runs_postgres_workers_shards_and_webhooks():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    scaled = {
        name: service
        for name, service in compose["services"].items()
        if service.get("profiles") == ["scale"]
    }
    postgres = scaled.pop("postgres")
    assert postgres["image"].startswith("postgres:")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert set(scaled) == {"worker", "discord-shard-0", "discord-shard-1", "telegram-webhook"}
    for name, service in scaled.items():
        environment = service["environment"]
        assert environment["MELODYBOT_DATABASE_URL"].startswith("postgresql://"), name
        assert environment["MELODYBOT_JOB_QUEUE"] == "postgresql", name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert service["restart"] == "unless-stopped" and service["env_file"] == ".env", name
    assert scaled["worker"]["command"] == ["worker"] and scaled["worker"]["deploy"]["replicas"] >= 2
    shards = [scaled[f"discord-shard-{n}"]["environment"] for n in (0, 1)]
    assert [s["DISCORD_SHARD_IDS"] for s in shards] == ["0", "1"]
    assert {s["DISCORD_SHARD_COUNT"] for s in shards} == {"2"}
    webhook = scaled["telegram-webhook"]
    assert webhook["command"] == ["telegram"] and webhook["deploy"]["replicas"] >= 2
    assert "TELEGRAM_WEBHOOK_URL" in webhook["environment"] and webhook["expose"] == ["8443"]
    assert "melodybot-postgres" in compose["volumes"]
    # Every command the profile runs is one the image's entry point knows.
    from melodybot.cli import main

    assert {service["command"][0] for service in scaled.values()} <= set(main.commands)


def test_dockerfile_is_slim_non_root_with_tools_model_and_healthcheck():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    for package in ("musescore3", "libfluidsynth3", "fluid-soundfont-gm"):
        assert package in dockerfile
    assert "COPY models ./models" in dockerfile
    user_line = re.search(r"^USER (\S+)", dockerfile, re.M)
    assert user_line and user_line[1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile and '"melodybot", "health"' in dockerfile
    assert "TOKEN" not in dockerfile
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored


def _dockerfile_commands() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def _apt_packages_of_the_image() -> set[str]:
    packages = set()
    for instruction, arguments in _dockerfile_commands():
        for command in arguments.split("&&") if instruction == "RUN" else []:
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                packages |= {word for word in words[2:] if not word.startswith("-")}
    return packages


def _apt_packages_of_the_install_script() -> set[str]:
    script = (PROJECT_ROOT / "scripts" / "install-system-deps").read_text()
    (listed,) = re.findall(r"^packages=\((.*?)\)", script, re.M | re.S)
    return set(listed.split())


# What scripts/install-system-deps installs for the tests alone: ffmpeg is their independent
# loudness meter and decoder, Chromium and its driver open the report's listening page, and
# PostgreSQL's server is the real database of the storage suite (the image is its client: a
# deployment's server runs in a container of its own, docker-compose.yml's "scale" profile).
FOR_THE_TESTS_ONLY = {"ffmpeg", "chromium", "chromium-driver", "postgresql"}


def test_the_image_has_the_system_tools_that_the_install_script_gives_a_checkout():
    """One list of the tools the bot renders with, kept in two places: a tool added to one and
    not the other would leave the image drawing or playing less than the tests have proved."""
    image = _apt_packages_of_the_image()
    assert image, "the Dockerfile installs no apt packages"
    assert image == _apt_packages_of_the_install_script() - FOR_THE_TESTS_ONLY


def test_the_image_copies_every_package_it_installs():
    """pyproject.toml's packages are what `pip install .` puts in the image; each must be
    copied in, or the image is built without it (and the entry point fails at its first run)."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {
        arguments.split()[0]
        for instruction, arguments in _dockerfile_commands()
        if instruction == "COPY"
    }
    assert packages <= copied
    entry_module = project["project"]["scripts"]["melodybot"].partition(":")[0]
    checks = [a for i, a in _dockerfile_commands() if i == "RUN" and "python -c" in a]
    assert any(f"import {entry_module}" in check for check in checks)  # the build tries it


def _runtime_distributions() -> set[str]:
    """The distributions `pip install .` brings, as scripts/lock-runtime follows them."""
    return _lock_script().runtime_distributions()


def _lock_script():
    import importlib.machinery
    import importlib.util

    path = PROJECT_ROOT / "scripts" / "lock-runtime"
    loader = importlib.machinery.SourceFileLoader("lock_runtime", str(path))
    spec = importlib.util.spec_from_loader("lock_runtime", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_image_installs_pinned_versions_that_the_project_allows():
    """constraints.txt pins every distribution the image installs, and nothing else, each at a
    version pyproject.toml allows (scripts/lock-runtime rewrites it)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = (PROJECT_ROOT / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert set(pins) == {
        name for name in _runtime_distributions() if name in _lock_script().installed({name})
    }
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        wanted = Requirement(line)
        assert pins[canonicalize_name(wanted.name)] in wanted.specifier, line
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "pip install -c constraints.txt ." in dockerfile


def _top_level_modules(distributions: set[str]) -> set[str]:
    """The top-level module names those distributions' files provide."""
    from packaging.utils import canonicalize_name

    names = set()
    for distribution in metadata.distributions():
        if canonicalize_name(distribution.metadata["Name"]) in distributions:
            for file in distribution.files or []:
                if file.parts[0].endswith((".dist-info", ".data")) or file.parts[0] in (
                    "..",
                    "__pycache__",
                ):
                    continue
                names.add(file.parts[0].split(".")[0] if len(file.parts) == 1 else file.parts[0])
    return names


def test_the_bot_runs_on_what_the_image_installs(tmp_path):
    """The image installs the dependencies and no extra (TensorFlow is for training alone).
    With only the modules those provide importable, the bot's serving code loads, composes,
    draws, plays and serves its health endpoint, and never loads the training package."""
    from generator.render import audio_available, available_png_renderers

    allowed = _top_level_modules(_runtime_distributions())
    assert {"numpy", "music21", "telegram", "discord"} <= allowed
    assert not {"tensorflow", "keras", "pytest", "yaml"} & allowed
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tests" / "image_only.py"), str(SHIPPED_MODEL)],
        input=json.dumps(sorted(allowed)),
        capture_output=True,
        text=True,
        env=checkout_env(os.environ),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Its verdict is the last line: a library may print a first-run notice before it.
    ran = json.loads(done.stdout.strip().splitlines()[-1])
    audio = ["ogg", "mp3"] if audio_available()[0] else ["RenderError"] * 2
    picture = "png" if "verovio" in available_png_renderers() else "RenderError"
    assert ran["jobs"] == ["midi", picture, *audio]
    assert ran["training"] == []
    assert not {"tensorflow", "keras"} & set(ran["refused"])  # not even tried


# The packages of the serving code: everything the image runs but generator.training.
SERVING = ("melodybot", "bot", "generator", "storage")


def _imports_of_the_serving_code() -> dict[str, set[tuple[str, bool]]]:
    """Third-party top-level module → {(file, imported inside a function)} over SERVING."""
    import ast

    found: dict[str, set[tuple[str, bool]]] = {}
    own = {*SERVING, "tests"}
    for package in SERVING:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            if (PROJECT_ROOT / "generator" / "training") in path.parents:
                continue
            tree = ast.parse(path.read_text())
            lazy = {
                id(node)
                for function in ast.walk(tree)
                if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
                for node in ast.walk(function)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top not in own:
                        where = (str(path.relative_to(PROJECT_ROOT)), id(node) in lazy)
                        found.setdefault(top, set()).add(where)
    return found


def test_every_distribution_the_serving_code_imports_is_a_dependency_of_its_own():
    """`make run` and the image install the dependencies and no extra, so a module the serving
    code imports must come from a distribution named there, not only with another one (which
    may drop it in any release). The `train` extra's modules may be imported only inside the
    functions that train or report, never when a module loads."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    base = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    train = {
        canonicalize_name(Requirement(line).name)
        for line in project["optional-dependencies"]["train"]
    }
    providers = metadata.packages_distributions()
    for module, places in sorted(_imports_of_the_serving_code().items()):
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        assert distributions, f"{module} (imported by {sorted(places)}) is not installed here"
        if distributions & base:
            continue
        assert distributions & train, f"{module} comes from no dependency: {sorted(places)}"
        eager = sorted(file for file, lazy in places if not lazy)
        assert not eager, f"{module} (the train extra) is imported when {eager} load"


def test_env_example_documents_every_setting():
    from bot.config import Settings

    documented = (PROJECT_ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or [f"MELODYBOT_{name}"]
        assert any(alias.upper() in documented for alias in aliases), name


async def _run(*args: str, env: dict, cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *MELODYBOT,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


def _bot_env(tmp_path: Path, fake: FakeTelegram, **settings: str) -> dict[str, str]:
    """The environment of a `melodybot telegram` process talking to ``fake``: audio off and no
    cooldown unless ``settings`` (MELODYBOT_* names, or TELEGRAM_TOKEN) say otherwise."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TELEGRAM_TOKEN": "123456:TEST-TOKEN",
        "TELEGRAM_BASE_URL": fake.base_url,
        "MELODYBOT_DATA_DIR": str(tmp_path / "data"),
        "MELODYBOT_HEARTBEAT_FILE": str(tmp_path / "heartbeat.json"),
        "MELODYBOT_AUDIO": "false",
        "MELODYBOT_COOLDOWN_S": "0",
    }
    return checkout_env(env) | settings


async def _start_bot(env: dict[str, str], tmp_path: Path) -> asyncio.subprocess.Process:
    """Start the bot, its output in tmp_path/bot.log (a file: a pipe nobody reads would fill up
    and stall it), and wait for its first heartbeat."""
    with (tmp_path / "bot.log").open("wb") as log_file:
        bot = await asyncio.create_subprocess_exec(
            *MELODYBOT, "telegram", env=env, cwd=tmp_path, stdout=log_file, stderr=log_file
        )
    heartbeat = Path(env["MELODYBOT_HEARTBEAT_FILE"])
    for _ in range(600):
        if heartbeat.exists() or bot.returncode is not None:
            break
        await asyncio.sleep(0.1)
    return bot


def _bot_log(tmp_path: Path) -> str:
    return (tmp_path / "bot.log").read_text()


async def test_entry_command_serves_reports_health_and_stops_cleanly(tmp_path, tiny_model_dir):
    fake = FakeTelegram()
    await fake.start()
    heartbeat = tmp_path / "heartbeat.json"
    env = _bot_env(tmp_path, fake, MELODYBOT_MODEL_DIR=str(tiny_model_dir))
    bot = await _start_bot(env, tmp_path)
    try:
        code, out = await _run("health", env=env, cwd=tmp_path)
        assert code == 0 and "alive: telegram" in out
        fake.send_text("/melody C4 D4 E4 seed=1 bars=2")
        await fake.wait_for("sendDocument", timeout=60)
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 60) == 0, _bot_log(tmp_path)
    finally:
        if bot.returncode is None:
            bot.kill()
        await fake.stop()
    log = _bot_log(tmp_path)
    assert "123456:TEST-TOKEN" not in log and "TEST-TOKEN" not in log  # never in logs
    assert not heartbeat.exists()  # a stopped bot is not reported alive
    code, out = await _run("health", env=env, cwd=tmp_path)
    assert code == 1
    with sqlite3.connect(tmp_path / "data" / "melodybot.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT status FROM generations").fetchall() == [("done",)]
    code, out = await _run("backup", str(tmp_path / "copy.sqlite3"), env=env, cwd=tmp_path)
    assert code == 0, out
    with sqlite3.connect(tmp_path / "copy.sqlite3") as copy:
        assert copy.execute("SELECT count(*) FROM generations").fetchone()[0] == 1


async def test_a_rejected_telegram_token_is_a_clear_error_that_never_shows_it(tmp_path):
    fake = FakeTelegram()
    await fake.start()
    fake.rejected_tokens.add("123456:REVOKED-TOKEN")
    env = _bot_env(tmp_path, fake, TELEGRAM_TOKEN="123456:REVOKED-TOKEN")
    try:
        code, out = await asyncio.wait_for(_run("telegram", env=env, cwd=tmp_path), 120)
    finally:
        await fake.stop()
    assert code == 1
    assert "Telegram rejected TELEGRAM_TOKEN: check it with @BotFather" in out
    assert "REVOKED-TOKEN" not in out and "Traceback" not in out
    assert not (tmp_path / "heartbeat.json").exists()


async def test_sigterm_under_load_stops_in_seconds_and_loses_no_melody(tmp_path, tiny_model_dir):
    """24 users wait for melodies (audio on, so each takes a while) when SIGTERM comes: what runs
    finishes and is delivered, what waits is cancelled, its user told and their slot given back,
    and the process is gone in seconds, not after the whole queue."""
    fake = FakeTelegram()
    await fake.start()
    env = _bot_env(
        tmp_path,
        fake,
        MELODYBOT_MODEL_DIR=str(tiny_model_dir),
        MELODYBOT_AUDIO="true",
        MELODYBOT_QUEUE_SIZE="40",
    )
    bot = await _start_bot(env, tmp_path)
    users = range(100, 124)
    try:
        for user in users:  # each in a chat of their own (a group allows 20 messages a minute)
            text = f"/melody C4 D4 E4 bars=16 seed={user}"
            fake.send_text(text, chat_id=user, user_id=user, chat_type="private")
        await fake.wait_for("sendDocument", timeout=120)  # melodies are being delivered
        bot.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(bot.wait(), 60)
        took = time.monotonic() - started
    finally:
        if bot.returncode is None:
            bot.kill()
        await fake.stop()
    assert code == 0, _bot_log(tmp_path)
    assert took < 15, f"took {took:.1f} s to stop"
    with sqlite3.connect(tmp_path / "data" / "melodybot.sqlite3") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM generations GROUP BY status"))
        counted = db.execute("SELECT count(*) FROM usage WHERE counts = 1").fetchone()[0]
        inbox = {
            str(row[0])
            for row in db.execute("SELECT json_extract(payload, '$.message.chat.id') FROM inbox")
        }
    assert "pending" not in statuses and statuses.get("failed", 0) > 0
    assert counted == statuses["done"]  # only delivered melodies hold a quota slot
    told = {
        c.fields["chat_id"] for c in fake.sent("sendMessage") if "ask again" in c.fields["text"]
    }
    delivered = {c.fields["chat_id"] for c in fake.sent("sendDocument")}
    assert len(delivered) == len(fake.sent("sendDocument")) == statuses["done"]
    # every user heard once at most: their melody, or to ask again (a row failed, or, for a
    # message that came once the stop had begun, none made); a message not answered waits for
    # the next process, in the inbox or still on Telegram
    assert told.isdisjoint(delivered) and len(told) >= statuses["failed"]
    unanswered = {str(u) for u in users} - told - delivered
    assert unanswered <= inbox | {
        str(u["message"]["chat"]["id"]) for u in fake.unconfirmed_updates()
    }


@pytest.fixture
def small_disk(tmp_path):
    """A small tmpfs for the data folder, to fill up (32 MB: room for the database and the
    first melody's files before the test fills it); where mounting is not allowed, skipped."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small disk here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the disk to the last byte; unbuffered, so closing the file cannot fail on data
    still waiting to be written."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as file:
        for size in (65536, 4096, 1):  # big steps, then the last few bytes
            try:
                while file.write(b"\0" * size):
                    pass
            except OSError:
                continue
    return filler


async def test_a_full_disk_is_said_clearly_and_the_bot_recovers_when_space_returns(
    tmp_path, tiny_model_dir, small_disk
):
    fake = FakeTelegram()
    await fake.start()
    heartbeat = small_disk / "heartbeat.json"
    env = _bot_env(
        tmp_path,
        fake,
        MELODYBOT_DATA_DIR=str(small_disk / "data"),
        MELODYBOT_MODEL_DIR=str(tiny_model_dir),
        MELODYBOT_HEARTBEAT_FILE=str(heartbeat),
    )
    bot = await _start_bot(env, tmp_path)
    try:
        fake.send_text("/melody C4 D4 E4 seed=1 bars=2", chat_id=1, chat_type="private")
        await fake.wait_for("sendDocument", timeout=60)
        await fake.wait_for("sendPhoto", timeout=60)  # the first melody is complete (no audio)
        filler = _fill(small_disk)
        fake.send_text("/melody C4 D4 E4 seed=2 bars=2", chat_id=1, chat_type="private")
        (said,) = await fake.wait_for("sendMessage", timeout=60)
        assert "can't save melodies right now" in said.fields["text"]
        await asyncio.sleep(11)  # a heartbeat came and could not be written
        assert not heartbeat.with_suffix(".tmp").exists()  # no half-written beat left behind
        before = heartbeat.stat().st_mtime
        filler.unlink()  # space returns
        for _ in range(150):
            if heartbeat.stat().st_mtime > before:
                break
            await asyncio.sleep(0.1)
        assert heartbeat.stat().st_mtime > before  # the heartbeat came back by itself
        fake.send_text("/melody C4 D4 E4 seed=3 bars=2", chat_id=1, chat_type="private")
        await fake.wait_for("sendDocument", count=2, timeout=60)  # and so did melodies
        bot.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(bot.wait(), 30)
    finally:
        if bot.returncode is None:
            bot.kill()
        await fake.stop()
    log = _bot_log(tmp_path)
    assert code == 0, log
    assert "cannot write the heartbeat" in log and "cannot save" in log
    assert "Traceback" not in log


async def test_a_melody_cut_off_by_kill_9_reaches_its_user_after_the_restart(
    tmp_path, tiny_model_dir
):
    """kill -9 mid-melody (composed and stored, its upload hanging, so it is surely mid-way):
    the next process finds the melody its dead predecessor left, sends that very melody to the
    chat it was asked in, and it counts once against the quota."""
    fake = FakeTelegram()
    await fake.start()
    fake.hold.add("sendDocument")
    env = _bot_env(tmp_path, fake, MELODYBOT_MODEL_DIR=str(tiny_model_dir))
    first = await _start_bot(env, tmp_path)
    try:
        fake.send_text(
            "/melody C4 D4 E4 seed=4 bars=2", chat_id=31, user_id=31, chat_type="private"
        )
        for _ in range(600):
            if fake.held:
                break
            await asyncio.sleep(0.1)
        assert fake.held, _bot_log(tmp_path)
        first.kill()  # SIGKILL: nothing of ours runs
        await first.wait()
        assert fake.sent("sendDocument") == []  # the user has nothing yet
        fake.hold.clear()
        second = await _start_bot(env, tmp_path)
        try:
            (midi,) = await fake.wait_for("sendDocument", timeout=120)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 60) == 0, _bot_log(tmp_path)
        finally:
            if second.returncode is None:
                second.kill()
    finally:
        if first.returncode is None:
            first.kill()
        await fake.stop()
    assert midi.fields["chat_id"] == "31"
    assert "I was restarted while composing this" in midi.fields["caption"]
    with sqlite3.connect(tmp_path / "data" / "melodybot.sqlite3") as db:
        (status, stored), *others = db.execute("SELECT status, midi FROM generations").fetchall()
        assert others == [] and status == "done" and stored == next(iter(midi.files.values()))
        assert db.execute("SELECT counts FROM usage").fetchall() == [(1,)]  # counted once


def test_tokens_are_read_from_secret_files(tmp_path):
    """Docker hands a service its secrets as files in /run/secrets; MELODYBOT_SECRETS_DIR
    points elsewhere. A token in a file works as one in the environment, and never shows."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "telegram_token").write_text("123456:FROM-A-FILE\n")
    env = checkout_env(os.environ) | {"MELODYBOT_SECRETS_DIR": str(secrets)}
    for name in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "MELODYBOT_TELEGRAM_TOKEN"):
        env.pop(name, None)
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from melodybot.bot_commands import _settings; s = _settings(); "
            "print(s.telegram_token.get_secret_value(), s.discord_token, repr(s))",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    token, discord, settings = shown.split(" ", 2)
    assert token == "123456:FROM-A-FILE" and discord == "None"
    assert "FROM-A-FILE" not in settings
