"""Commands that run and look after the bot: ``run``, ``chat``, ``discord``, ``telegram``,
``backup`` and ``health``.

Settings come from the environment or ``.env`` (bot.config); a setting, a platform or a
database that stops the bot from starting ends the command with a message, not a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.platforms import PLATFORMS, Platform
from melodybot.logs import configure_logging

if TYPE_CHECKING:
    from bot.config import Settings


def _settings(**overrides: Any) -> Settings:
    from pydantic import ValidationError

    from bot.config import Settings, secrets_dir

    try:
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return Settings(_secrets_dir=secrets_dir(), **chosen)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.ClickException(f"bad settings: {problems}") from None


def _serve(settings: Settings, platforms: tuple[str, ...] = tuple(PLATFORMS)) -> None:
    """Run the front-ends; a platform that refuses us is a clear error, not a traceback."""
    from bot.runner import run_bots

    _clearly(lambda: asyncio.run(run_bots(settings, platforms)))


def _clearly(action: Callable[[], object]) -> None:
    """Run ``action``; what stops the bot from starting (a platform refusing it, a damaged or
    unwritable database) ends the command with its message instead of a traceback."""
    from bot.platforms import FrontEndFailure
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


@click.command()
@click.option("--user", default="you", show_default=True, help="Who is speaking.")
@click.option("--moderator", is_flag=True, help="Speak as a moderator of the chat.")
@data_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def chat(user: str, moderator: bool, data_dir: Path | None, verbose: bool) -> None:
    """Chat with the bot in the terminal; no token needed.

    Reads the conversation from stdin when it is piped.
    """
    from bot.app import open_app
    from bot.console import run_console

    settings = _settings(data_dir=data_dir)
    configure_logging(verbose) if verbose else logging.basicConfig(level=logging.WARNING)

    async def session() -> None:
        app = await open_app(settings)
        try:
            await run_console(app, user=user, moderator=moderator, files_dir=settings.files_dir)
        finally:
            await app.close()

    _clearly(lambda: asyncio.run(session()))


@click.command()
@data_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def run(data_dir: Path | None, verbose: bool) -> None:
    """Run the bot on Discord and/or Telegram, or else the console chat.

    Each front-end whose token (DISCORD_TOKEN, TELEGRAM_TOKEN) is set runs; with neither set,
    the console chat starts instead.
    """
    settings = _settings(data_dir=data_dir)
    configure_logging(verbose, settings)
    if not any(platform.has_token(settings) for platform in PLATFORMS.values()):
        tokens = " or ".join(platform.token_variable for platform in PLATFORMS.values())
        click.echo(f"No {tokens} set: starting the console chat.", err=True)
        ctx = click.get_current_context()
        ctx.invoke(chat, user="you", moderator=True, data_dir=data_dir, verbose=verbose)
        return
    _serve(settings)


def platform_command(platform: Platform) -> click.Command:
    """``melodybot discord``, ``melodybot telegram``, …: one front-end alone, as each
    docker-compose service runs it."""

    @click.command(
        name=platform.name,
        help=f"Run only the {platform.name.title()} bot (needs {platform.token_variable}).",
    )
    @data_dir_option
    @click.option("-v", "--verbose", is_flag=True, help="Log more.")
    def run_one(data_dir: Path | None, verbose: bool) -> None:
        settings = _settings(data_dir=data_dir)
        if not platform.has_token(settings):
            raise click.ClickException(
                f"set {platform.token_variable} (in the environment or .env) first"
            )
        configure_logging(verbose, settings)
        _serve(settings, (platform.name,))

    return run_one


PLATFORM_COMMANDS = tuple(platform_command(platform) for platform in PLATFORMS.values())


@click.command()
@click.argument("destination", type=click.Path(path_type=Path))
@data_dir_option
def backup(destination: Path, data_dir: Path | None) -> None:
    """Copy the live database to DESTINATION, safely while the bots run."""
    from storage.db import backup as backup_database

    settings = _settings(data_dir=data_dir)
    if not settings.database.exists():
        raise click.ClickException(f"no database at {settings.database}")
    backup_database(settings.database, destination)
    click.echo(f"backed up {settings.database} to {destination}")


@click.command()
@click.option(
    "--heartbeat-file",
    type=click.Path(path_type=Path),
    default=None,
    help="The running bot's heartbeat (default: $MELODYBOT_HEARTBEAT_FILE).",
)
def health(heartbeat_file: Path | None) -> None:
    """Exit 0 while the running bot's heartbeat is fresh, else 1.

    For container health checks: the running bot keeps rewriting its heartbeat file and removes
    it when it stops, so a stale or missing file means a bot that hangs or is gone.
    """
    from bot.health import is_alive

    if heartbeat_file is None:
        heartbeat_file = _settings().heartbeat_file
    if heartbeat_file is None:
        raise click.ClickException(
            "set MELODYBOT_HEARTBEAT_FILE or pass --heartbeat-file to use health checks"
        )
    alive, line = is_alive(heartbeat_file)
    click.echo(line)
    if not alive:
        sys.exit(1)
