"""Where the shipped model lives, overridable so a deployment can point at its own."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_NAME = "esac-lstm"


def default_model_dir() -> Path:
    """``$MELODYBOT_MODEL_DIR``, else the ``models/esac-lstm`` shipped beside the code."""
    configured = os.environ.get("MELODYBOT_MODEL_DIR")
    if configured:
        return Path(configured)
    beside_code = Path(__file__).resolve().parent.parent / "models" / DEFAULT_MODEL_NAME
    return beside_code if beside_code.exists() else Path("models") / DEFAULT_MODEL_NAME
