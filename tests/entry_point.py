"""The ``melodybot`` command as this checkout declares it, for tests that run it as a process.

An installed ``melodybot`` script runs the code it was installed from, which need not be this
checkout's (a second worktree, an editable install made before the entry point moved). This runs
the entry point that pyproject.toml names, from this checkout, the way pip's script calls it.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Mapping

from tests.conftest import PROJECT_ROOT

ENTRY_POINT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"][
    "melodybot"
]
_MODULE, _, _FUNCTION = ENTRY_POINT.partition(":")
MELODYBOT = (
    sys.executable,
    "-c",
    f"import sys; from {_MODULE} import {_FUNCTION}; sys.exit({_FUNCTION}(prog_name='melodybot'))",
)


def checkout_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with this checkout's packages first on the import path."""
    return dict(env) | {"PYTHONPATH": str(PROJECT_ROOT)}
