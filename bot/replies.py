"""What the core answers: text plus files, in a form every front-end can send its own way.

A melody's reply goes out in two steps: the text and the MIDI file as soon as the melody is
composed, then the score picture and the audio preview as each is made (:class:`FollowUps`). A
user hears back at chat speed even when many melodies are being drawn and played, and a picture
or audio that fails costs them only that part.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

AttachmentKind = Literal["midi", "png", "audio", "voice", "musicxml"]
Delivered = Callable[[], Awaitable[None]]  # told once the platform took a reply's first part


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    kind: AttachmentKind
    mime_type: str


@dataclass(frozen=True)
class Action:
    """Something the user may do next with one tap ("Again", "Vary"): a label and the command
    line it runs, in the chat grammar without a prefix (``again 12 temp=1.2``). A platform with
    buttons shows them; one without shows nothing, as the reply's text says the same."""

    label: str
    command: str


@dataclass(frozen=True)
class Reply:
    """One answer. ``private`` asks front-ends that can (Discord slash commands) to show it only to
    the asker; ``melody_id`` names the melody it carries; ``actions`` are offered as buttons;
    ``refusal`` marks an error or a refusal, which the core sends a user only so often;
    ``composed`` marks a melody composed for this reply, whose quota slot goes back if the reply
    cannot be delivered."""

    text: str
    attachments: tuple[Attachment, ...] = ()
    follow_ups: FollowUps | None = None
    private: bool = False
    melody_id: int | None = None
    actions: tuple[Action, ...] = ()
    refusal: bool = False
    composed: bool = False  # carries a melody composed just now (not a re-send)

    def attachment(self, kind: AttachmentKind) -> Attachment | None:
        return next((a for a in self.attachments if a.kind == kind), None)


@dataclass(frozen=True)
class FollowUp:
    """A part of a reply still being made: what it will be (so a front-end can show "sending a
    photo…" while it waits) and the work that makes it, which ends in the attachment or in a
    line telling the user why it could not be made."""

    kind: AttachmentKind
    made: asyncio.Future[Attachment | str]

    async def result(self) -> Attachment | str:
        try:
            return await self.made
        except asyncio.CancelledError:
            return "(Not sent: the reply it belongs to did not go out.)"


class FollowUps:
    """The parts that follow a reply, in the order they are to be sent. The work behind them
    starts before the reply is sent; ``done`` is called once all of it has ended, however it
    ended (the melody's place in the worker pool goes back then)."""

    def __init__(self, parts: Sequence[FollowUp], done: Callable[[], None] = lambda: None):
        self.parts = tuple(parts)
        remaining = len(self.parts)

        def one_ended(_: asyncio.Future) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                done()

        for part in self.parts:
            part.made.add_done_callback(one_ended)
        if not self.parts:
            done()

    async def __aiter__(self) -> AsyncIterator[tuple[FollowUp, Attachment | str]]:
        for part in self.parts:
            yield part, await part.result()

    async def gather(self) -> list[Attachment | str]:
        """Everything, once all is made (for a platform that adds it to the reply in one go)."""
        return [await part.result() for part in self.parts]

    def cancel(self) -> None:
        """The reply itself did not go out: nothing should follow it."""
        for part in self.parts:
            part.made.cancel()


_MELODY_LINE = re.compile(r"^#(?P<id>\d{1,19}) · key ", re.MULTILINE)


def melody_in(text: str) -> int | None:
    """The number of the melody a reply of the bot's carries, read back from its text
    (``#12 · key G · …``), for a message that answers one of them (``!remix``)."""
    match = _MELODY_LINE.search(text)
    return int(match["id"]) if match else None
