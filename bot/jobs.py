"""The melody work done in the worker processes: compose, draw the score, play the preview.

Each worker loads the model and warms the synthesizer (the soundfont) once, in :func:`setup`, so
a job pays only for its own melody. Composing runs first and alone decides when a user hears
back: it samples every waiting request as one batch and writes each MIDI file straight from the
steps. Drawing and playing follow at lower priorities, and several scores waiting together are
drawn by one MuseScore.

The payloads and results are small and picklable (a :class:`~generator.engine.Melody` travels as
its steps and key name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from bot.workers import JobKind
from generator.engine import Melody, MelodyEngine
from generator.render import (
    AUDIO_FORMATS,
    RenderError,
    RenderSettings,
    render_audio,
    render_pngs,
    render_svg,
)
from generator.render.audio import Performance
from generator.request import MelodyRequest

log = logging.getLogger("melodybot.jobs")

COMPOSE = JobKind("compose", "bot.jobs:compose", priority=0, batch=50, timeout_s=60.0)
# Four scores a MuseScore: most of its start-up shared, and a worker drawing them is back for
# a melody to compose within about half a second.
DRAW = JobKind("draw", "bot.jobs:draw", priority=1, batch=4, timeout_s=120.0)
PLAY = JobKind("play", "bot.jobs:play", priority=2, batch=1, timeout_s=60.0)
# A web page's score: after every chat's melody, picture and audio, as a reader can wait.
DRAW_SVG = JobKind("svg", "bot.jobs:draw_svg", priority=3, batch=8, timeout_s=60.0)
WRITE_MUSICXML = JobKind("musicxml", "bot.jobs:write_musicxml", priority=1, batch=8, timeout_s=60.0)


@dataclass(frozen=True)
class WorkerSetup:
    model_dir: Path
    render: RenderSettings
    audio: bool


@dataclass(frozen=True)
class Composed:
    melody: Melody
    midi: bytes


class _Worker:
    engine: MelodyEngine | None = None
    render = RenderSettings()


def setup(config: WorkerSetup) -> None:
    """Load what every job needs, once per worker process."""
    _Worker.engine = MelodyEngine.load(config.model_dir)
    _Worker.render = config.render
    if config.audio:
        for audio_format in AUDIO_FORMATS:  # the soundfont loads with the first note played:
            try:  # here, not in a user's melody
                render_audio(Performance(((0.0, 0.1, 60),), 0.1), config.render, audio_format)
            except RenderError as error:
                log.warning("no %s previews in this worker: %s", audio_format, error)


def _engine() -> MelodyEngine:
    if _Worker.engine is None:
        raise RuntimeError("the worker was not set up with a model")
    return _Worker.engine


def compose(requests: list[MelodyRequest]) -> list[Composed | Exception]:
    """All waiting requests as one batch (one matrix product per step for all of them); if the
    batch fails, each request alone, so a bad one fails by itself."""
    engine = _engine()
    try:
        melodies: list[Melody | Exception] = list(engine.compose_many(requests))
    except Exception:
        melodies = [_compose_one(engine, request) for request in requests]
    return [m if isinstance(m, Exception) else Composed(m, m.to_midi()) for m in melodies]


def _compose_one(engine: MelodyEngine, request: MelodyRequest) -> Melody | Exception:
    try:
        return engine.compose(request)
    except Exception as error:
        return error


def draw(items: list[tuple[Melody, str]]) -> list[bytes | RenderError]:
    """Score pictures of (melody, title) pairs, drawn together."""
    scores = [melody.to_musicxml(title) for melody, title in items]
    return render_pngs(scores, _Worker.render)


def draw_svg(items: list[tuple[Melody, str]]) -> list[bytes | RenderError]:
    """Scores of (melody, title) pairs as SVG (verovio), for their web pages."""
    results: list[bytes | RenderError] = []
    for melody, title in items:
        try:
            results.append(render_svg(melody.to_musicxml(title)))
        except RenderError as error:
            results.append(error)
    return results


def write_musicxml(items: list[tuple[Melody, str]]) -> list[bytes]:
    """MusicXML files of (melody, title) pairs, for users who asked for one (xml=yes)."""
    return [melody.to_musicxml(title) for melody, title in items]


def play(items: list[tuple[Melody, str]]) -> list[bytes | RenderError]:
    """Audio previews of (melody, format) pairs: "mp3" or "voice" (OGG/Opus)."""
    results: list[bytes | RenderError] = []
    for melody, audio_format in items:
        asked = melody.request.instrument  # inst=, else the bot's MELODYBOT_AUDIO_PROGRAM
        render = _Worker.render if asked is None else replace(_Worker.render, gm_program=asked)
        try:
            results.append(render_audio(melody.performance(), render, audio_format))
        except RenderError as error:
            results.append(error)
    return results
