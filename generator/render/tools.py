"""Running external programs safely: own temp folder, a timeout, and readable failures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from generator.render.errors import RenderError


def find(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def run(command: list[str], *, timeout_s: float, what: str, cwd: Path) -> None:
    """Run a tool; a non-zero exit or a timeout becomes a RenderError naming ``what`` failed."""
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen", "HOME": str(cwd)}
    try:
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"{what} took longer than {timeout_s:g} s and was stopped.") from None
    except OSError as error:
        raise RenderError(f"{what} could not start: {error.strerror}.") from None
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RenderError(f"{what} failed ({detail[0][:200]}).")
