"""What the core answers: text plus files, in a form every front-end can send its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AttachmentKind = Literal["midi", "png", "audio", "musicxml"]


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    kind: AttachmentKind
    mime_type: str


@dataclass(frozen=True)
class Reply:
    """One answer. ``private`` asks front-ends that can (Discord slash commands) to show it only to
    the asker; ``melody_id`` lets a front-end attach "Again"/"Vary" buttons; ``refusal`` marks an
    error or a refusal, which the core sends a user only so often; ``composed`` marks a melody
    composed for this reply, whose quota slot goes back if the reply cannot be delivered."""

    text: str
    attachments: tuple[Attachment, ...] = ()
    private: bool = False
    melody_id: int | None = None
    temperature: float | None = None
    notes: tuple[str, ...] = field(default=())  # problems worth telling (e.g. score not drawn)
    refusal: bool = False
    composed: bool = False  # carries a melody composed just now (not a re-send)

    def attachment(self, kind: AttachmentKind) -> Attachment | None:
        return next((a for a in self.attachments if a.kind == kind), None)
