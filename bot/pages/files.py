"""A page's files, made once however many readers ask at the same moment.

The score (SVG), the audio preview (MP3) and the MusicXML of a melody are made by the worker
pool the first time a reader asks; readers asking while it is being made wait for that same
job, and later ones get the bytes kept here, the most recently read first to stay, up to
``budget_bytes``. Nothing is kept of a melody that was removed: the page server asks storage
first, on every request.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

Key = tuple[str, str]  # (page id, which file)


class MadeOnce:
    def __init__(self, budget_bytes: int = 64 * 2**20):
        self.budget_bytes = budget_bytes
        self._kept: OrderedDict[Key, bytes] = OrderedDict()
        self._kept_bytes = 0
        self._making: dict[Key, asyncio.Future[bytes]] = {}

    async def get(self, key: Key, make: Callable[[], Awaitable[bytes]]) -> bytes:
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        if key not in self._making:
            self._making[key] = asyncio.ensure_future(self._make(key, make))
        # shield: a reader who leaves does not cancel the job the others wait for
        return await asyncio.shield(self._making[key])

    async def _make(self, key: Key, make: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            data = await make()
        finally:
            self._making.pop(key, None)
        self._keep(key, data)
        return data

    def _keep(self, key: Key, data: bytes) -> None:
        if len(data) > self.budget_bytes:
            return
        self._kept[key] = data
        self._kept_bytes += len(data)
        while self._kept_bytes > self.budget_bytes:
            _, dropped = self._kept.popitem(last=False)
            self._kept_bytes -= len(dropped)

    def forget(self, page_id: str) -> None:
        for key in [k for k in self._kept if k[0] == page_id]:
            self._kept_bytes -= len(self._kept.pop(key))
