"""A chat message as every front-end describes it to the core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Incoming:
    platform: str
    chat_id: str
    user_id: str
    user_name: str
    text: str
    mentions: tuple[tuple[str, str], ...] = ()  # (user id, name) of users named in the message
    reply_to: tuple[str, str] | None = None  # (user id, name) of the message answered, if any
    answers_melody: int | None = None  # the melody in the bot's message this one answers
    # Where to send a melody if this process stops before it is done (a Discord channel id, …);
    # the front-end that reads it back is the one that wrote it.
    reply_address: str | None = None
    # The platform's id of this very message, so that seeing it twice makes one melody.
    source: str | None = None
    # The preview the platform plays best: "mp3", or "voice" for an OGG/Opus voice note.
    audio_format: str = "mp3"
    # How replies write commands to this user: "/" where they typed a slash command or pressed
    # a button (Discord), None for the bot's own prefix.
    shown_prefix: str | None = None

    def __post_init__(self) -> None:
        # A lone surrogate (which some clients send) can't be stored, logged or sent back as
        # UTF-8; it becomes U+FFFD here, so everything after sees only text it can encode.
        for name in ("chat_id", "user_id", "user_name", "text"):
            value = getattr(self, name)
            clean = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            if clean != value:
                object.__setattr__(self, name, clean)
