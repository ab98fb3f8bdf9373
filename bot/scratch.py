"""The bot's own folder for the renderers' temporary files, inside the data folder.

Renderers write a WAV of hundreds of MB for a long melody; left in /tmp by a process killed with
SIGKILL, such folders pile up. Each bot process works in ``<data>/tmp/<id>/`` and holds an
exclusive lock on ``<id>.lock`` for as long as it lives (the kernel drops the lock when the
process dies, however it dies); at start a process removes every folder whose lock it can take,
which only a dead process's can be, so two bots sharing a data folder never touch each other's.
The same lock tells whether the process that began a pending melody still lives
(:func:`is_alive`), so the next process can take over what a killed one left.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import uuid
from pathlib import Path

log = logging.getLogger("melodybot")


class Scratch:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        swept = sweep_abandoned(root)
        if swept:
            log.info("removed %d scratch folders left by stopped processes", swept)
        self.name = uuid.uuid4().hex[:12]  # this process, as pending melodies name it
        self._lock = (root / f"{self.name}.lock").open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = root / self.name
        self.path.mkdir()

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            Path(self._lock.name).unlink()
        self._lock.close()


def is_alive(root: Path, name: str) -> bool:
    """Whether the process whose scratch is ``name`` still runs: its lock is held. A lock file
    swept away, or one that can be taken, belongs to a process that is gone (this process's own
    lock cannot be taken through a second handle either, so it counts as alive)."""
    if not name.isalnum():
        return False  # not a name this module gives out
    try:
        lock = (root / f"{name}.lock").open("r")
    except FileNotFoundError:
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def sweep_abandoned(root: Path) -> int:
    """Remove the scratch folders of processes that are gone; returns how many."""
    swept = 0
    for lock_path in root.glob("*.lock"):
        with lock_path.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            shutil.rmtree(root / lock_path.stem, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
            swept += 1
    return swept
