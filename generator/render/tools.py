"""Running external programs safely: own temp folder, a timeout, and readable failures.

Each tool runs in a process group of its own, so a timeout stops everything it started (MuseScore
and FluidSynth start helpers of their own), not only the process we waited for; and on Linux it
is told to die with the bot, so a bot killed with SIGKILL leaves no renderer running. What a tool
printed (paths, library chatter) goes to the log for the operator; the RenderError a chat user
may see says only which tool failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

from generator.render.errors import RenderError

log = logging.getLogger("melodybot.render")
PR_SET_PDEATHSIG = 1
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _LIBC.prctl  # noqa: B018  (Linux only: elsewhere tools simply outlive a killed bot)
except (OSError, AttributeError):
    _LIBC = None


def die_with_parent() -> None:
    """SIGKILL this process when the thread that started it dies (so a killed bot leaves no
    tool behind). Safe between fork and exec: one system call, nothing that could take a
    lock."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def find(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def run(command: list[str], *, timeout_s: float, what: str, cwd: Path) -> None:
    """Run a tool; a non-zero exit or a timeout becomes a RenderError naming ``what`` failed."""
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen", "HOME": str(cwd)}
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as one on timeout
            preexec_fn=die_with_parent,
        )
    except OSError as error:
        raise RenderError(f"{what} could not start: {error.strerror}.") from None
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise RenderError(f"{what} took longer than {timeout_s:g} s and was stopped.") from None
    except BaseException:  # cancelled or interrupted while waiting: leave nothing running
        _kill_group(process)
        raise
    finally:
        _kill_group(process, only_leftovers=True)
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        log.warning("%s exited with %s: %s", what, process.returncode, detail[0][:500])
        raise RenderError(f"{what} failed.")


def _kill_group(process: subprocess.Popen, *, only_leftovers: bool = False) -> None:
    """SIGKILL the tool's process group (after it exited: whatever it left behind)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(process.pid, signal.SIGKILL)
    if not only_leftovers:
        process.communicate()
