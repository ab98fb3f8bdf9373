"""The bot's log lines: its format on stderr, with every bot token blanked out."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings

# Libraries that log every request at INFO: their lines would bury the bot's own.
NOISY_LOGGERS = ("httpx", "discord.gateway", "discord.client", "telegram.ext")


class SecretsHidden(logging.Formatter):
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


def configure_logging(verbose: bool, settings: Settings | None = None) -> None:
    """Log to stderr in the bot's format (DEBUG with ``verbose``), hiding ``settings``' tokens."""
    from bot.workers import LOG_FORMAT  # the worker processes log in it too

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr)
    secrets = []
    if settings is not None:
        tokens = (settings.discord_token, settings.telegram_token)
        secrets = [t.get_secret_value() for t in tokens if t is not None]
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SecretsHidden(LOG_FORMAT, secrets))
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
