"""Score pictures and audio previews of melodies, through real tools.

PNG: MuseScore 3 (``mscore3``) when installed, else verovio → SVG → cairosvg; MuseScore runs in its
own temporary folder with a timeout. Audio: FluidSynth's library in this process with a General
MIDI soundfont, loudness in NumPy, LAME for the MP3, libopus for the OGG/Opus voice note. Each
fails with :class:`RenderError` carrying a message a chat user can read; callers send the rest of
the reply anyway.
"""

from generator.render.audio import (
    AUDIO_FORMATS,
    AUDIO_MIME,
    AUDIO_SUFFIX,
    VOICE_MIME,
    VOICE_SUFFIX,
    audio_available,
    render_audio,
)
from generator.render.errors import RenderError
from generator.render.score import (
    available_png_renderers,
    prepare_musicxml,
    render_png,
    render_pngs,
    render_svg,
)
from generator.render.settings import RenderSettings

__all__ = [
    "AUDIO_FORMATS",
    "AUDIO_MIME",
    "AUDIO_SUFFIX",
    "VOICE_MIME",
    "VOICE_SUFFIX",
    "RenderError",
    "RenderSettings",
    "audio_available",
    "available_png_renderers",
    "prepare_musicxml",
    "render_audio",
    "render_png",
    "render_pngs",
    "render_svg",
]
