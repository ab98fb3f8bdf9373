"""README's two set-up commands, `make run` and `make test`, in either order on a fresh machine.

`make run` installs the project alone (no TensorFlow), `make test` the `dev` extra on top; each
set has its own stamp in .venv. What make would do is read with `make -n` in a copy of the
Makefile and pyproject.toml, with the stamps laid out as an earlier command leaves them: nothing
is installed, so these run in milliseconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make here")

INSTALL_RUN = "pip install --quiet -e .\n"
INSTALL_DEV = "pip install --quiet -e '.[dev]'"
NEW_VENV = "-m venv .venv"
MAKE_VARIABLES = {
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEOVERRIDES",
    "MAKE_TERMOUT",
    "MAKE_TERMERR",
}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    _age(tmp_path / "pyproject.toml", 100)
    return tmp_path


def _age(path: Path, seconds: float) -> None:
    """Make ``path`` (created if need be) ``seconds`` old, so that make's comparisons of
    modification times never hang on a clock tick."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    when = time.time() - seconds
    os.utime(path, (when, when))


def _venv_after(checkout: Path, *stamps: str) -> None:
    """A venv as an earlier command left it: its python and the named stamps, newer than
    pyproject.toml."""
    _age(checkout / ".venv" / "bin" / "python", 50)
    for stamp in stamps:
        _age(checkout / ".venv" / f".installed-{stamp}", 10)


def _would_run(checkout: Path, target: str) -> str:
    """The commands `make TARGET` would run there. Under `make test` these tests run inside a
    make, whose variables would turn this one into a sub-make (printing "Entering directory"
    and inheriting its flags), so they are left out."""
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_run_on_a_fresh_machine_installs_the_project_without_extras(checkout):
    plan = _would_run(checkout, "run")
    assert NEW_VENV in plan and INSTALL_RUN in plan
    assert "[" not in "".join(line for line in plan.splitlines() if "pip install" in line)
    assert "scripts/install-system-deps" in plan
    assert plan.rstrip().endswith(".venv/bin/melodybot run")


def test_make_test_on_a_fresh_machine_installs_the_dev_set(checkout):
    plan = _would_run(checkout, "test")
    assert NEW_VENV in plan and INSTALL_DEV in plan and INSTALL_RUN not in plan
    assert ".venv/bin/pytest -q" in plan


def test_make_test_after_make_run_adds_the_dev_set_to_the_same_venv(checkout):
    _venv_after(checkout, "run")
    plan = _would_run(checkout, "test")
    assert INSTALL_DEV in plan and NEW_VENV not in plan


def test_make_run_after_make_test_installs_nothing_more(checkout):
    """The dev set holds the run set, so its install stamps both."""
    plan = _would_run(checkout, "test")
    assert re.search(r"touch \S*\.installed-dev \S*\.installed-run", plan)
    _venv_after(checkout, "dev", "run")
    plan = _would_run(checkout, "run")
    assert "pip install" not in plan and "melodybot run" in plan


def test_a_changed_pyproject_is_installed_again_by_either_command(checkout):
    _venv_after(checkout, "dev", "run")
    (checkout / "pyproject.toml").touch()  # now newer than both stamps
    assert INSTALL_RUN in _would_run(checkout, "run")
    assert INSTALL_DEV in _would_run(checkout, "test")


def test_ci_runs_readme_s_test_command():
    """.ci/run is what CI calls on a fresh clone: README's test command, which installs what it
    needs itself."""
    commands = [
        line
        for line in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert commands == ["make test"]
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", readme, re.M) and re.search(r"^make run\b", readme, re.M)
