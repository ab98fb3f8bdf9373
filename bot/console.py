"""A local chat in the terminal: the same core and storage as the real bots, no token needed.

Interactive when stdin is a terminal; otherwise it reads stdin line by line, so a session can be
scripted: ``printf '!melody C4 D4\\n!history\\n' | melodybot chat``. Files are written to a
folder and their paths printed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.app import App
from bot.incoming import Incoming
from bot.replies import Attachment
from bot.takeover import take_over_interrupted

PLATFORM = "console"
CHAT_ID = "terminal"


async def run_console(
    app: App,
    *,
    user: str,
    moderator: bool,
    files_dir: Path,
    source: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
) -> int:
    """Answer every line until end of input; returns how many messages were handled."""
    # Nobody can be answered for a terminal session that is gone: its melodies' slots go back.
    await take_over_interrupted(app, PLATFORM, None)
    interactive = source.isatty()
    prefix = app.settings.prefix
    if interactive:
        print(
            f"melodybot console — you are {user}{' (moderator)' if moderator else ''}. "
            f"Try {prefix}help, or {prefix}melody C4 D4 E4 temp=0.8. Ctrl-D quits.",
            file=out,
        )

    async def moderates() -> bool:
        return moderator

    handled = 0
    while True:
        if interactive:
            print("> ", end="", file=out, flush=True)
        line = await asyncio.to_thread(source.readline)
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if not text.startswith((prefix, "/")):
            text = f"{prefix}{text}"  # in a private terminal every line is for the bot
        message = Incoming(PLATFORM, CHAT_ID, user, user, text)
        reply = await app.core.handle(message, is_moderator=moderates)
        handled += 1
        if reply is None:
            continue
        print(reply.text, file=out)
        for attachment in reply.attachments:
            _save(attachment, files_dir, out)
        out.flush()
        await app.core.delivered(reply)
        if reply.follow_ups is not None:
            async for _part, made in reply.follow_ups:
                if isinstance(made, str):
                    print(made, file=out)
                else:
                    _save(made, files_dir, out)
                out.flush()
    return handled


def _save(attachment: Attachment, files_dir: Path, out: TextIO) -> None:
    files_dir.mkdir(parents=True, exist_ok=True)
    path = files_dir / attachment.filename
    path.write_bytes(attachment.data)
    print(f"  {attachment.kind}: {path}", file=out)
