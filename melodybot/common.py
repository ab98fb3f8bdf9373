"""What commands of more than one concern share: the ``--model`` option and clear failures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from generator.paths import default_model_dir

T = TypeVar("T")

model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=default_model_dir,
    show_default="models/esac-lstm or $MELODYBOT_MODEL_DIR",
    help="Model folder (model.keras, vocab.json, meta.json).",
)


def or_fail(action: Callable[[], T]) -> T:
    """Run ``action``; a missing file or a bad value ends the command with its message, not a
    traceback (those are mistakes the person at the terminal can fix)."""
    try:
        return action()
    except (FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None
