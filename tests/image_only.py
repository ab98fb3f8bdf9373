"""The bot's serving code in a process that can import only what the Docker image installs.

Usage: python tests/image_only.py MODEL_DIR < allowed.json

stdin holds the top-level module names the image's Python packages provide (the project's
dependencies and theirs, no extra). Any other module that would be found in site-packages is
"not installed" here, as in the image: TensorFlow, Keras and the test tools above all. The
process then imports the entry point and every module of bot/ and generator/ (the training
package aside), and does what a worker does for a melody: compose it and write its MIDI file,
draw its score, play its voice note and MP3, and serve the health endpoint. It prints one JSON
line last: what each job gave, the modules it was refused (optional ones that code falls back
without) and any module of generator.training that got loaded.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import json
import pkgutil
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

SITE_PACKAGES = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
TRAINING = "generator.training"


class ImageOnly:
    """Refuses a top-level module that comes from site-packages but from no package the image
    installs; the standard library and this checkout's own packages are found as usual."""

    def __init__(self, allowed: set[str]):
        self.allowed = allowed
        self.refused: set[str] = set()

    def find_spec(self, name: str, path=None, target=None):
        if path is not None or name in self.allowed:
            return None  # a submodule: its package was let in already
        spec = importlib.machinery.PathFinder.find_spec(name)
        origin = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), None))
        if origin and any(Path(origin).resolve().is_relative_to(s) for s in SITE_PACKAGES):
            self.refused.add(name)
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
        return None


def import_all(package: ModuleType) -> None:
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name != TRAINING:
            module = importlib.import_module(info.name)
            if info.ispkg:
                import_all(module)


def kind(result: object) -> str:
    """A job's result as the test compares it: the file type its first bytes say, or the error's
    type."""
    if not isinstance(result, bytes):
        return type(result).__name__
    if result.startswith(b"ID3") or (result[:1] == b"\xff" and result[1] & 0xE0 == 0xE0):
        return "mp3"  # an ID3 tag, or an MPEG audio frame's sync bits
    return {b"\x89PNG": "png", b"OggS": "ogg", b"MThd": "midi"}.get(result[:4], "unknown")


def main(model_dir: Path) -> None:
    finder = ImageOnly(set(json.load(sys.stdin)))
    sys.meta_path.insert(0, finder)

    import bot
    import generator
    import melodybot.cli  # noqa: F401  (the image's entry point)

    import_all(bot)
    import_all(generator)

    from bot.config import Settings
    from bot.health import Heartbeat
    from bot.jobs import WorkerSetup, compose, draw, play, setup
    from generator.render import RenderSettings
    from generator.request import parse_request

    setup(WorkerSetup(model_dir, RenderSettings(renderer="verovio"), audio=True))
    (composed,) = compose([parse_request("C4 D4 E4 bars=2 seed=1")])
    (picture,) = draw([(composed.melody, "#1")])
    voice, mp3 = play([(composed.melody, "voice")]) + play([(composed.melody, "mp3")])

    async def serve_health() -> None:
        heartbeat = Heartbeat(Settings(health_port=0), ["image"])
        await heartbeat.start()
        await heartbeat.stop()

    asyncio.run(serve_health())
    print(
        json.dumps(
            {
                "jobs": [kind(composed.midi), kind(picture), kind(voice), kind(mp3)],
                "refused": sorted(finder.refused),
                "training": sorted(name for name in sys.modules if name.startswith(TRAINING)),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
