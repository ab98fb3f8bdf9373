"""Settings from the environment, a ``.env`` file or secret files (Docker secrets); every one
has a default that runs locally.

Tokens are ``SecretStr``: they never show in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.limits import BY_FIELD
from generator.paths import default_model_dir
from generator.ranges import MAX_TEMPERATURE, MIN_TEMPERATURE
from storage.records import Limits

SECRETS_DIR = Path("/run/secrets")  # where Docker and Kubernetes put a service's secrets


def secrets_dir() -> Path | None:
    """Where settings may be read from files as well as from the environment: a file named as
    the setting (``discord_token``, ``telegram_token``, any ``melodybot_*``) holds its value.
    ``MELODYBOT_SECRETS_DIR`` names the folder; by default Docker's, when there is one."""
    chosen = Path(os.environ.get("MELODYBOT_SECRETS_DIR") or SECRETS_DIR)
    return chosen if chosen.is_dir() else None


def _limit(field: str):
    """A chat limit's setting: its default and bounds from the one place they are written."""
    limit = BY_FIELD[field]
    return Field(limit.default, ge=limit.low, le=limit.high)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MELODYBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # "TOKEN=" in .env means not set, not an empty token
        extra="ignore",
    )

    discord_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DISCORD_TOKEN", "MELODYBOT_DISCORD_TOKEN")
    )
    telegram_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TELEGRAM_TOKEN", "MELODYBOT_TELEGRAM_TOKEN")
    )
    telegram_base_url: str | None = Field(
        None, validation_alias=AliasChoices("TELEGRAM_BASE_URL", "MELODYBOT_TELEGRAM_BASE_URL")
    )
    # Webhook mode: Telegram posts updates to this public HTTPS address instead of being polled,
    # so several bot processes can share one token behind a load balancer.
    telegram_webhook_url: str | None = Field(
        None,
        validation_alias=AliasChoices("TELEGRAM_WEBHOOK_URL", "MELODYBOT_TELEGRAM_WEBHOOK_URL"),
    )
    telegram_webhook_port: int = Field(8443, ge=0, le=65535)  # where this process listens
    # What Telegram sends along to prove an update is its own (default: derived from the token,
    # so every process with the token agrees without another secret to share).
    telegram_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "TELEGRAM_WEBHOOK_SECRET", "MELODYBOT_TELEGRAM_WEBHOOK_SECRET"
        ),
    )
    # Sharding: how many gateway connections the bot's servers are split over, and which of
    # them this process runs (e.g. 0,1 of 4), so shards can run in several processes or
    # machines. Unset: discord.py asks Discord for the count and runs every shard here.
    discord_shard_count: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("DISCORD_SHARD_COUNT", "MELODYBOT_DISCORD_SHARD_COUNT"),
    )
    discord_shard_ids: Annotated[list[int] | None, NoDecode] = Field(
        None, validation_alias=AliasChoices("DISCORD_SHARD_IDS", "MELODYBOT_DISCORD_SHARD_IDS")
    )
    discord_api_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DISCORD_API_BASE_URL", "MELODYBOT_DISCORD_API_BASE_URL"),
    )

    prefix: str = "!"
    data_dir: Path = Path("data")
    database_path: Path | None = None
    # PostgreSQL instead of the SQLite file, for front-ends and workers on several machines:
    # postgresql://user:password@host:5432/melodybot (a secret: it may hold a password).
    database_url: SecretStr | None = None
    # Where melodies are made: "local" worker processes of this bot (the default), or the
    # "postgresql" job queue that `melodybot worker` processes on any machine take them from.
    job_queue: Literal["local", "postgresql"] = "local"
    model_dir: Path = Field(default_factory=default_model_dir)

    renderer: Literal["auto", "musescore", "verovio"] = "auto"
    render_timeout_s: float = 30.0
    audio: bool = True
    audio_program: int = Field(0, ge=0, le=127, description="General MIDI program, 0 = piano")

    moderator_role: str | None = None
    moderator_ids: Annotated[list[str], NoDecode] = []

    default_temperature: float = Field(1.0, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE)
    # the chat limits' defaults, where no moderator has set them (see bot/limits.py)
    daily_quota: int = _limit("daily_quota")
    cooldown_s: int = _limit("cooldown_s")
    max_bars: int = _limit("max_bars")
    max_seed_notes: int = _limit("max_seed_notes")
    keep_last_generations: int | None = Field(None, ge=1)
    keep_days: int | None = Field(None, ge=1)
    housekeeping_every_s: float = Field(300.0, gt=0)

    # worker processes: one per core, so every core composes and renders
    workers: int = Field(default_factory=lambda: min(os.cpu_count() or 2, 32), ge=1, le=32)
    queue_size: int = Field(20, ge=1)
    health_port: int | None = None  # also serves the melody pages (see public_url)
    # Where readers reach the melody pages (e.g. https://melodies.example.org): when set, every
    # melody's reply carries the link to its page.
    public_url: str | None = None
    heartbeat_file: Path | None = None

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _split_shard_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()] or None
        return value

    @model_validator(mode="after")
    def _shards_fit(self) -> Settings:
        ids = self.discord_shard_ids
        if ids is not None:
            if self.discord_shard_count is None:
                raise ValueError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (how many in all)")
            wrong = [i for i in ids if not 0 <= i < self.discord_shard_count]
            if wrong:
                raise ValueError(
                    f"DISCORD_SHARD_IDS {wrong} are not shards of {self.discord_shard_count} "
                    f"(0 to {self.discord_shard_count - 1})"
                )
        return self

    @field_validator("moderator_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def limits(self) -> Limits:
        """The limits of a chat where no moderator has changed any."""
        return Limits(
            daily_quota=self.daily_quota,
            cooldown_s=self.cooldown_s,
            max_bars=self.max_bars,
            max_seed_notes=self.max_seed_notes,
        )

    @property
    def database(self) -> Path:
        """The SQLite file (used when no ``database_url`` is set)."""
        return self.database_path or self.data_dir / "melodybot.sqlite3"

    @property
    def database_target(self) -> Path | str:
        """What :meth:`storage.Repository.open` opens: the PostgreSQL URL if set, else the file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.database

    @model_validator(mode="after")
    def _queue_needs_postgres(self) -> Settings:
        if self.job_queue == "postgresql" and self.database_url is None:
            raise ValueError(
                "MELODYBOT_JOB_QUEUE=postgresql keeps the jobs in PostgreSQL: set "
                "MELODYBOT_DATABASE_URL too"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        from storage.postgres import is_postgres_url

        if value is not None and not is_postgres_url(value.get_secret_value()):
            raise ValueError("must be a postgresql:// URL (leave it unset for the SQLite file)")
        return value

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"
