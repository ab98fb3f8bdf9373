"""Audio previews: MIDI → FluidSynth (General MIDI soundfont) → ffmpeg → MP3.

MP3 because both platforms play it inline: Telegram shows ``sendAudio`` MP3s with a player,
Discord previews MP3 attachments. ffmpeg normalises loudness (EBU R128, −16 LUFS, peaks held
under −1.5 dBTP so nothing clips), trims FluidSynth's long silent tail and fades the end out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from generator.render import tools
from generator.render.errors import RenderError
from generator.render.settings import RenderSettings

AUDIO_SUFFIX = ".mp3"
AUDIO_MIME = "audio/mpeg"
RELEASE_S = 0.8  # let the last note ring this long before the file ends
FADE_S = 0.6


def audio_available(settings: RenderSettings | None = None) -> tuple[bool, str]:
    """Whether previews can be made here, and if not, why (logged once at start-up)."""
    settings = settings or RenderSettings()
    if not tools.find("fluidsynth"):
        return False, "FluidSynth is not installed (apt-get install fluidsynth)"
    if not tools.find("ffmpeg"):
        return False, "ffmpeg is not installed (apt-get install ffmpeg)"
    if settings.soundfont_path() is None:
        return False, "no General MIDI soundfont found (apt-get install fluid-soundfont-gm)"
    return True, "FluidSynth and ffmpeg are ready"


def with_program(midi: bytes, program: int) -> bytes:
    """The MIDI with every channel's instrument set to one General MIDI program."""
    from music21 import midi as m21midi

    midi_file = m21midi.MidiFile()
    midi_file.readstr(midi)
    program_change = m21midi.ChannelVoiceMessages.PROGRAM_CHANGE
    for track in midi_file.tracks:
        changes = [e for e in track.events if e.type == program_change]
        for event in changes:
            event.data = program
        has_notes = any(e.type == m21midi.ChannelVoiceMessages.NOTE_ON for e in track.events)
        if has_notes and not changes:
            channel = next(
                e.channel for e in track.events if e.type == m21midi.ChannelVoiceMessages.NOTE_ON
            )
            delta = m21midi.DeltaTime(track, time=0, channel=channel)
            event = m21midi.MidiEvent(track, type=program_change, channel=channel)
            event.data = program
            track.events[0:0] = [delta, event]
    return bytes(midi_file.writestr())


def midi_duration_s(midi: bytes) -> float:
    """How long the music lasts, from its notes and tempo marks."""
    from music21 import converter

    score = converter.parseData(midi, format="midi")
    seconds = 0.0
    for start, end, mark in score.metronomeMarkBoundaries():
        seconds += (end - start) * mark.secondsPerQuarter()
    return seconds


def render_audio(midi: bytes, settings: RenderSettings | None = None) -> bytes:
    """An MP3 preview of the MIDI; raises RenderError when the tools are missing or fail."""
    settings = settings or RenderSettings()
    ready, reason = audio_available(settings)
    if not ready:
        raise RenderError(f"no audio preview: {reason}.")
    soundfont = settings.soundfont_path()
    length = midi_duration_s(midi) + RELEASE_S
    with tempfile.TemporaryDirectory(
        prefix="melodybot-audio-", dir=settings.scratch_dir
    ) as scratch:
        folder = Path(scratch)
        (folder / "melody.mid").write_bytes(with_program(midi, settings.gm_program))
        tools.run(
            [
                tools.find("fluidsynth"),
                "-n",
                "-i",
                "-q",
                "-g",
                "0.8",
                "-r",
                "44100",
                "-F",
                "melody.wav",
                str(soundfont),
                "melody.mid",
            ],
            timeout_s=settings.timeout_s,
            what="FluidSynth",
            cwd=folder,
        )
        filters = (
            f"atrim=0:{length:.3f},"
            "loudnorm=I=-16:TP=-1.5:LRA=11,"
            f"afade=t=out:st={max(0.0, length - FADE_S):.3f}:d={FADE_S},"
            "aresample=44100"
        )
        tools.run(
            [
                tools.find("ffmpeg"),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                "melody.wav",
                "-af",
                filters,
                "-codec:a",
                "libmp3lame",
                "-b:a",
                "128k",
                "melody.mp3",
            ],
            timeout_s=settings.timeout_s,
            what="ffmpeg",
            cwd=folder,
        )
        return (folder / "melody.mp3").read_bytes()
