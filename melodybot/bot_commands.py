"""Commands that run and look after the bot: ``run``, ``chat``, ``discord``, ``telegram``,
``worker``, ``queue``, ``backup``, ``migrate-data`` and ``health``.

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
    if settings.database_url is not None:
        raise click.ClickException(
            "the bot's data is in PostgreSQL (MELODYBOT_DATABASE_URL): back it up with pg_dump"
        )
    if not settings.database.exists():
        raise click.ClickException(f"no database at {settings.database}")
    backup_database(settings.database, destination)
    click.echo(f"backed up {settings.database} to {destination}")


@click.command()
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes on this machine, about one per core (default: $MELODYBOT_WORKERS).",
)
@data_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def worker(processes: int | None, data_dir: Path | None, verbose: bool) -> None:
    """Compose, draw and play the melodies waiting in the PostgreSQL queue, on this machine.

    Start as many as you need, anywhere that reaches the database (MELODYBOT_DATABASE_URL); the
    front-ends hand them work when MELODYBOT_JOB_QUEUE=postgresql. A worker killed mid-job has
    its jobs run again by another one after about ten seconds. SIGTERM or Ctrl-C lets the jobs
    it is running finish first.
    """
    settings = _settings(data_dir=data_dir)
    if settings.database_url is None:
        raise click.ClickException(
            "a worker takes its jobs from PostgreSQL: set MELODYBOT_DATABASE_URL first"
        )
    configure_logging(verbose, settings)
    from bot.queue.worker import serve

    _clearly(lambda: asyncio.run(serve(settings, processes=processes)))


@click.command()
@data_dir_option
def queue(data_dir: Path | None) -> None:
    """Show the PostgreSQL job queue: workers alive, and jobs waiting, running and failed.

    "todo" jobs wait for a worker, "doing" ones run; "failed" ones ran out of retries (their
    users were told). Results stored but not yet taken belong to a front-end that is busy
    or stopped (they are cleared after an hour).
    """
    from bot.queue.status import queue_status

    settings = _settings(data_dir=data_dir)
    if settings.database_url is None:
        raise click.ClickException("the queue lives in PostgreSQL: set MELODYBOT_DATABASE_URL")
    url = settings.database_url.get_secret_value()
    found = []
    _clearly(lambda: found.append(asyncio.run(queue_status(url))))
    (status,) = found
    click.echo(f"workers alive: {status.workers_alive} (silent: {status.workers_silent})")
    if not status.jobs:
        click.echo("no jobs in the queue")
    for (kind, state), count in sorted(status.jobs.items()):
        click.echo(f"  {kind:<10} {state:<10} {count:>7,}")
    click.echo(f"results not yet taken: {status.results_untaken}")


@click.command("migrate-data")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The SQLite file to copy (default: the bot's, in --data-dir).",
)
@click.option(
    "--to",
    "url",
    default=None,
    metavar="URL",
    help="The empty PostgreSQL database (default: $MELODYBOT_DATABASE_URL).",
)
@data_dir_option
def migrate_data(source: Path | None, url: str | None, data_dir: Path | None) -> None:
    """Copy the bot's SQLite database into an empty PostgreSQL one, with nothing lost.

    The file is read from a snapshot, so the bots may keep running; stop them before you switch
    them to PostgreSQL, or melodies made in between stay behind. Row counts are checked table by
    table, and a failure leaves PostgreSQL empty.
    """
    from storage.postgres import is_postgres_url, redacted
    from storage.transfer import copy_to_postgres

    settings = _settings(data_dir=data_dir)
    source = source or settings.database
    if url is None and settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    if not url or not is_postgres_url(url):
        raise click.ClickException(
            "say where to copy to: --to postgresql://user@host/db, or set MELODYBOT_DATABASE_URL"
        )
    copied = {}

    def report(table: str, rows: int) -> None:
        click.echo(f"  {table:<14} {rows:>9,} rows")

    click.echo(f"copying {source} into {redacted(url)}")
    _clearly(lambda: copied.update(copy_to_postgres(source, url, report=report)))
    click.echo(f"done: {sum(copied.values()):,} rows in {len(copied)} tables, every count checked")


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
