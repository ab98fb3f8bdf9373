"""``melodybot`` bot commands: run the bot, chat in the terminal, back up the database.

They join the melody engine's commands (prepare, train, evaluate, generate, info) in one CLI.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import click

from bot.workers import LOG_FORMAT
from generator.cli import main  # imports no NumPy yet, so the setting below still applies

# One BLAS thread per process (the worker processes inherit it): the model's step multiplies
# small matrices, and BLAS thread pools fighting the workers for 2 cores made a step 10× slower.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

log = logging.getLogger("melodybot")


def _settings(**overrides):
    from pydantic import ValidationError

    from bot.config import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.ClickException(f"bad settings: {problems}") from None


class _SecretsHidden(logging.Formatter):
    """Formats as usual, then blanks every secret (bot tokens) out of the line and its traceback:
    a library that quotes a token in an error message never puts it in the log."""

    def __init__(self, fmt: str, secrets: list[str]):
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "[token hidden]")
        return text


def _logging(verbose: bool, settings=None) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr)
    secrets = []
    if settings is not None:
        tokens = (settings.discord_token, settings.telegram_token)
        secrets = [t.get_secret_value() for t in tokens if t is not None]
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_SecretsHidden(LOG_FORMAT, secrets))
    for noisy in ("httpx", "discord.gateway", "discord.client", "telegram.ext"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _serve(settings, *, discord: bool, telegram: bool) -> None:
    """Run the front-ends; a platform that refuses us is a clear error, not a traceback."""
    from bot.runner import run_bots

    _clearly(lambda: asyncio.run(run_bots(settings, discord=discord, telegram=telegram)))


def _clearly(action) -> None:
    """Run ``action``; what stops the bot from starting (a platform refusing it, a damaged or
    unwritable database) ends the command with its message instead of a traceback."""
    from bot.runner import FrontEndFailure
    from storage.db import StorageError

    try:
        action()
    except (FrontEndFailure, StorageError) as failure:
        raise click.ClickException(str(failure)) from None


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the database and files go (default: $MELODYBOT_DATA_DIR or ./data).",
)


@main.command()
@click.option("--user", default="you", show_default=True, help="Who is speaking.")
@click.option("--moderator", is_flag=True, help="Speak as a moderator of the chat.")
@data_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def chat(user: str, moderator: bool, data_dir: Path | None, verbose: bool) -> None:
    """Chat with the bot in the terminal (no token needed); reads stdin when piped."""
    from bot.app import open_app
    from bot.console import run_console

    settings = _settings(data_dir=data_dir)
    _logging(verbose) if verbose else logging.basicConfig(level=logging.WARNING)

    async def session() -> None:
        app = await open_app(settings)
        try:
            await run_console(app, user=user, moderator=moderator, files_dir=settings.files_dir)
        finally:
            await app.close()

    _clearly(lambda: asyncio.run(session()))


@main.command()
@data_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def run(data_dir: Path | None, verbose: bool) -> None:
    """Run the bot: Discord and/or Telegram when their tokens are set, else the console chat."""
    settings = _settings(data_dir=data_dir)
    _logging(verbose, settings)
    if not settings.discord_token and not settings.telegram_token:
        click.echo("No DISCORD_TOKEN or TELEGRAM_TOKEN set: starting the console chat.", err=True)
        ctx = click.get_current_context()
        ctx.invoke(chat, user="you", moderator=True, data_dir=data_dir, verbose=verbose)
        return
    _serve(settings, discord=True, telegram=True)


def _run_one(platform: str, token_variable: str, data_dir: Path | None, verbose: bool) -> None:
    """Run a single front-end, as each docker-compose service does."""
    settings = _settings(data_dir=data_dir)
    if getattr(settings, f"{platform}_token") is None:
        raise click.ClickException(f"set {token_variable} (in the environment or .env) first")
    _logging(verbose, settings)
    _serve(settings, discord=platform == "discord", telegram=platform == "telegram")


@main.command()
@data_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def discord(data_dir: Path | None, verbose: bool) -> None:
    """Run only the Discord bot (needs DISCORD_TOKEN)."""
    _run_one("discord", "DISCORD_TOKEN", data_dir, verbose)


@main.command()
@data_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def telegram(data_dir: Path | None, verbose: bool) -> None:
    """Run only the Telegram bot (needs TELEGRAM_TOKEN)."""
    _run_one("telegram", "TELEGRAM_TOKEN", data_dir, verbose)


@main.command()
@click.argument("destination", type=click.Path(path_type=Path))
@data_dir_option
def backup(destination: Path, data_dir: Path | None) -> None:
    """Copy the live database consistently to DESTINATION (safe while the bots run)."""
    from storage.db import backup as backup_database

    settings = _settings(data_dir=data_dir)
    if not settings.database.exists():
        raise click.ClickException(f"no database at {settings.database}")
    backup_database(settings.database, destination)
    click.echo(f"backed up {settings.database} to {destination}")


@main.command()
def health() -> None:
    """Exit 0 while the running bot's heartbeat is fresh (for container health checks)."""
    from bot.health import is_alive

    settings = _settings()
    if settings.heartbeat_file is None:
        raise click.ClickException("set MELODYBOT_HEARTBEAT_FILE to use health checks")
    alive, line = is_alive(settings.heartbeat_file)
    click.echo(line)
    if not alive:
        sys.exit(1)


__all__ = ["main"]
