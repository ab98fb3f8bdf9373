"""How to render: which score renderer, how long to wait, which instrument to play."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)


@dataclass(frozen=True)
class RenderSettings:
    renderer: Literal["auto", "musescore", "verovio"] = "auto"
    timeout_s: float = 30.0
    width_px: int = 1400  # sharp on a phone, well under the platforms' upload limits
    gm_program: int = 0  # General MIDI instrument: 0 acoustic grand piano, 73 flute
    soundfont: Path | None = None  # None: the first of SOUNDFONT_CANDIDATES that exists
    scratch_dir: Path | None = None  # where temporary files go (None: the system's temp folder)

    def soundfont_path(self) -> Path | None:
        if self.soundfont is not None:
            return self.soundfont if self.soundfont.exists() else None
        return next((p for p in SOUNDFONT_CANDIDATES if p.exists()), None)
