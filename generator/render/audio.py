"""Audio previews: the melody's notes → FluidSynth in this process → loudness → MP3 or Opus.

Two formats. MP3, which Discord previews as an attachment and players everywhere take; and an
OGG/Opus voice note, which Telegram plays inline in the chat (``sendVoice``) where an MP3 is a
file to open. The notes are played straight from the melody (no MIDI file parsed back) by
FluidSynth's library with a General MIDI soundfont that is loaded once per process; loudness is
set in NumPy to −16 LUFS with true peaks under −1.5 dBTP (:mod:`generator.render.loudness`), the
end fades out, and LAME encodes the MP3 or libopus the voice note.

The MP3 is made at 44.1 kHz. The voice note is made at 24 kHz, a rate Opus takes, by a second
synthesizer (FluidSynth shares the soundfont's samples between the two), so nothing is resampled:
the soundfont's instruments have next to nothing above 12 kHz (60 dB below the rest), and
FluidSynth plays at 24 kHz in half the time it takes at 48 kHz. libopus is called directly
(ctypes) and its packets put in Ogg pages here: libsndfile's Opus encoder, which ``soundfile``
bundles, always runs at libopus's highest, slowest complexity and took 0.4 s for a 16-bar
melody, where libopus at complexity 5 takes 0.07 s.

Before, each preview started the ``fluidsynth`` program (loading the 148 MB soundfont every time)
and ffmpeg with its ``loudnorm`` filter: about 0.9 s of CPU for 8 bars. BENCHMARKS.md has today's
figure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from generator import encoding
from generator.render import loudness
from generator.render.errors import RenderError
from generator.render.settings import RenderSettings

AUDIO_SUFFIX = ".mp3"
AUDIO_MIME = "audio/mpeg"
VOICE_SUFFIX = ".ogg"
VOICE_MIME = "audio/ogg"
AUDIO_FORMATS = ("mp3", "voice")  # the MP3, and the OGG/Opus voice note
SAMPLE_RATE = 44_100  # the MP3's
VOICE_SAMPLE_RATE = 24_000  # the voice note's: Opus takes 8, 12, 16, 24 or 48 kHz
RELEASE_S = 0.8  # let the last note ring this long before the file ends
FADE_S = 0.6
VELOCITY = 90
MP3_KBPS = 128
MP3_QUALITY = 7  # LAME's 2 (best) … 7 (fast): at 128 kbit/s a solo instrument loses nothing heard
VOICE_KBPS = 48  # mono music: about a third of the MP3's size, a solo instrument still clean
# libopus's 0 (fast) … 10 (best): 5 is the lowest that keeps the pitch pre-filter, which a solo
# instrument's harmonics need, and encodes in about 70 % of the time 10 takes.
VOICE_COMPLEXITY = 5
# Opus at this rate lifts true peaks by up to about 0.6 dB on these melodies (measured on
# decoded voice notes): the voice note is limited 1 dB lower, so what plays stays under −1.5 dBTP.
VOICE_HEADROOM_DB = 1.0
VOICE_FRAME = VOICE_SAMPLE_RATE // 50  # 20 ms, the usual Opus frame for music
_GRANULE = 48_000 // VOICE_SAMPLE_RATE  # Ogg counts an Opus stream's samples at 48 kHz
# FluidSynth works in blocks of 64 samples and starts a note at the next block: notes are put on
# that grid (1.5 ms, inaudible), so a melody keeps its timing however the previous one ended.
BLOCK = 64
FLUSH_BLOCKS = 64  # silence rendered at most this many times 64 blocks to let the reverb die


def _on_grid(seconds: float, rate: int) -> int:
    return round(seconds * rate / BLOCK) * BLOCK


@dataclass(frozen=True)
class Performance:
    """What to play: (start, length) in seconds and a MIDI pitch for each note, and how long
    the music lasts (a final rest counts)."""

    notes: tuple[tuple[float, float, int], ...]
    duration_s: float

    @classmethod
    def of_tokens(cls, tokens: Sequence[str], bpm: float) -> Performance:
        """A melody's steps at its tempo."""
        seconds_per_step = encoding.STEP_QL * 60.0 / bpm
        notes, step = [], 0
        for event in encoding.tokens_to_events(tokens):
            if event.pitch is not None:
                notes.append((step * seconds_per_step, event.steps * seconds_per_step, event.pitch))
            step += event.steps
        return cls(tuple(notes), step * seconds_per_step)

    @classmethod
    def of_midi(cls, midi: bytes) -> Performance:
        """A MIDI file's notes (for music that is not a melody of ours, e.g. a corpus song).

        Read with mido, whose messages come in seconds with every tempo change applied: exactly
        the notes the file holds, where a score parser would add what notation needs (the key's
        scale, notes split at bar lines, a rest filling the last bar)."""
        import mido

        now, sounding, notes = 0.0, {}, []
        for message in mido.MidiFile(file=io.BytesIO(midi)):
            now += message.time
            if message.type not in ("note_on", "note_off"):
                continue
            key = (message.channel, message.note)
            if message.type == "note_on" and message.velocity > 0:
                sounding.setdefault(key, []).append(now)
            elif sounding.get(key):
                start = sounding[key].pop(0)
                notes.append((start, now - start, message.note))
        return cls(tuple(sorted(notes)), now)


def audio_available(
    settings: RenderSettings | None = None, audio_format: str = "mp3"
) -> tuple[bool, str]:
    """Whether previews in ``audio_format`` can be made here, and if not, why (logged once at
    start-up)."""
    settings = settings or RenderSettings()
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth loads libfluidsynth when imported)
    except (ImportError, OSError):
        return False, "FluidSynth's library is not installed (apt-get install fluidsynth)"
    if audio_format == "voice":
        if _libopus() is None:
            return False, "the Opus encoder is not installed (apt-get install libopus0)"
    else:
        try:
            import lameenc  # noqa: F401
        except ImportError:
            return False, "the MP3 encoder is not installed (pip install lameenc)"
    if settings.soundfont_path() is None:
        return False, "no General MIDI soundfont found (apt-get install fluid-soundfont-gm)"
    return True, f"FluidSynth and {'libopus' if audio_format == 'voice' else 'LAME'} are ready"


class _Synthesizer:
    """One FluidSynth with its soundfont loaded, shared by every thread of the process: a
    preview takes tens of milliseconds of it, loading the soundfont a third of a second and
    148 MB, so it is loaded once and used in turn. There is one per sample rate; FluidSynth
    keeps one copy of a soundfont's samples for all of them (the second starts in 0.05 s and
    takes some 16 MB)."""

    _instances: ClassVar[dict[tuple[Path, int], _Synthesizer]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, soundfont: Path, rate: int = SAMPLE_RATE):
        import fluidsynth

        self.lock = threading.Lock()
        self.rate = rate
        self.synth = fluidsynth.Synth(samplerate=float(rate), gain=0.5)
        self.soundfont_id = self.synth.sfload(str(soundfont))
        if self.soundfont_id < 0:
            raise RenderError("no audio preview: the soundfont could not be read.")

    @classmethod
    def for_soundfont(cls, soundfont: Path, rate: int = SAMPLE_RATE) -> _Synthesizer:
        with cls._instances_lock:
            if (soundfont, rate) not in cls._instances:
                cls._instances[soundfont, rate] = cls(soundfont, rate)
            return cls._instances[soundfont, rate]

    def play(self, performance: Performance, program: int) -> np.ndarray:
        """The performance as mono float samples, the last note left to ring for RELEASE_S."""
        rate = self.rate
        changes = sorted(
            [(_on_grid(start, rate), 1, pitch) for start, _, pitch in performance.notes]
            + [
                (_on_grid(start + length, rate), 0, pitch)
                for start, length, pitch in performance.notes
            ]
        )  # at the same moment a note ends (0) before the next one starts (1)
        end = _on_grid(performance.duration_s + RELEASE_S, rate)
        chunks = []
        with self.lock:
            self._silence()
            self.synth.program_select(0, self.soundfont_id, 0, program)
            now = 0
            for at, starts, pitch in changes:
                if at > now:
                    chunks.append(self.synth.get_samples(at - now))
                    now = at
                if starts:
                    self.synth.noteon(0, pitch, VELOCITY)
                else:
                    self.synth.noteoff(0, pitch)
            if end > now:
                chunks.append(self.synth.get_samples(end - now))
        stereo = np.concatenate(chunks)  # left, right, left, …
        mono = stereo[0::2].astype(np.float32)
        mono += stereo[1::2]  # (the mean over pairs, written out: NumPy's is 15× slower)
        mono *= np.float32(0.5 / 32768)
        return mono

    def _silence(self) -> None:
        """Stop every voice and let the reverb of the previous melody die away, so none of it
        is heard at the start of this one."""
        self.synth.system_reset()
        for _ in range(FLUSH_BLOCKS):
            if np.abs(self.synth.get_samples(BLOCK * 64)).max(initial=0) <= 1:
                return


def _fade_out(samples: np.ndarray, rate: int) -> np.ndarray:
    length = min(len(samples), int(FADE_S * rate))
    if length:
        samples[-length:] *= np.linspace(1.0, 0.0, length, dtype=np.float32)
    return samples


def encode_mp3(samples: np.ndarray) -> bytes:
    """Mono samples at SAMPLE_RATE as an MP3."""
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(MP3_KBPS)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(1)
    encoder.set_quality(MP3_QUALITY)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return bytes(encoder.encode(pcm) + encoder.flush())


_OPUS_APPLICATION_AUDIO = 2049
_OPUS_SET_BITRATE = 4002
_OPUS_SET_COMPLEXITY = 4010
_OPUS_SET_SIGNAL = 4024
_OPUS_SIGNAL_MUSIC = 3002
_OPUS_GET_LOOKAHEAD = 4027
_OPUS_MAX_PACKET = 1500  # bytes: a 20 ms mono packet is at most 1275
_OGG_SERIAL = 0x6D656C6F  # the stream's number; the file holds one stream, any number will do
_OGG_PAGE_PACKETS = 50  # a page a second, as opusenc writes them


@functools.cache
def _libopus() -> ctypes.CDLL | None:
    """libopus (Debian's libopus0), or None where it is not installed."""
    try:
        library = ctypes.CDLL("libopus.so.0")
    except OSError:
        name = ctypes.util.find_library("opus")  # another system's name for it
        try:
            library = ctypes.CDLL(name) if name else None
        except OSError:
            library = None
    if library is None:
        return None
    library.opus_encoder_create.restype = ctypes.c_void_p
    library.opus_encoder_create.argtypes = [
        ctypes.c_int32,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    library.opus_encode_float.restype = ctypes.c_int32
    library.opus_encode_float.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int32,
    ]
    library.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    library.opus_get_version_string.restype = ctypes.c_char_p
    return library  # opus_encoder_ctl takes variable arguments: each call gives their types


def _opus_packets(samples: np.ndarray) -> tuple[list[bytes], int, bytes]:
    """Mono samples at VOICE_SAMPLE_RATE as Opus packets of 20 ms, with the encoder's delay in
    samples (which the decoder skips) and libopus's name for the Ogg header."""
    library = _libopus()
    if library is None:
        raise RenderError("no audio preview: the Opus encoder is not installed.")
    error = ctypes.c_int()
    encoder = library.opus_encoder_create(
        VOICE_SAMPLE_RATE, 1, _OPUS_APPLICATION_AUDIO, ctypes.byref(error)
    )
    if error.value or not encoder:
        raise RenderError("no audio preview: the Opus encoder could not start.")
    handle = ctypes.c_void_p(encoder)
    try:
        for request, value in (
            (_OPUS_SET_BITRATE, VOICE_KBPS * 1000),
            (_OPUS_SET_COMPLEXITY, VOICE_COMPLEXITY),
            (_OPUS_SET_SIGNAL, _OPUS_SIGNAL_MUSIC),
        ):
            library.opus_encoder_ctl(handle, request, ctypes.c_int32(value))
        delay = ctypes.c_int32()
        library.opus_encoder_ctl(handle, _OPUS_GET_LOOKAHEAD, ctypes.byref(delay))
        # The encoder's delay is pushed out with silence, in whole frames.
        frames = -(-(len(samples) + delay.value) // VOICE_FRAME)
        pcm = np.zeros(frames * VOICE_FRAME, dtype=np.float32)
        pcm[: len(samples)] = samples
        packet = ctypes.create_string_buffer(_OPUS_MAX_PACKET)
        packets = []
        for frame in range(frames):
            address = pcm.ctypes.data + frame * VOICE_FRAME * pcm.itemsize
            size = library.opus_encode_float(handle, address, VOICE_FRAME, packet, _OPUS_MAX_PACKET)
            if size < 0:
                raise RenderError("no audio preview: the Opus encoder failed.")
            packets.append(ctypes.string_at(packet, size))
    finally:
        library.opus_encoder_destroy(encoder)
    return packets, delay.value, library.opus_get_version_string()


_REVERSED_BITS = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, most significant bit first, no inversions), by
    zlib's, which works least significant bit first: on the bytes' bits reversed, reversed."""
    reflected = zlib.crc32(page.translate(_REVERSED_BITS), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def _ogg_page(packets: Sequence[bytes], granule: int, sequence: int, flags: int = 0) -> bytes:
    """One Ogg page holding whole ``packets``; ``granule``: the samples (counted at 48 kHz)
    decoded by the end of its last packet, from the stream's start."""
    lacing = b"".join(b"\xff" * (len(p) // 255) + bytes([len(p) % 255]) for p in packets)
    header = struct.pack(
        "<4sBBqIIIB", b"OggS", 0, flags, granule, _OGG_SERIAL, sequence, 0, len(lacing)
    )
    page = header + lacing + b"".join(packets)
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def encode_voice(samples: np.ndarray) -> bytes:
    """Mono samples at VOICE_SAMPLE_RATE as an OGG/Opus voice note (RFC 7845): a page with the
    Opus header, one with the tags, then the audio, a second a page; the last page's granule
    position says where the music ends, so players drop the encoder's padding."""
    packets, delay, vendor = _opus_packets(np.clip(samples, -1.0, 1.0))
    skip = delay * _GRANULE
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, skip, VOICE_SAMPLE_RATE, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [_ogg_page([head], 0, 0, flags=0x02), _ogg_page([tags], 0, 1)]
    groups, group, lacing = [], [], 0  # a page holds at most 255 lacing values
    for packet in packets:
        if len(group) == _OGG_PAGE_PACKETS or lacing + len(packet) // 255 + 1 > 255:
            groups.append(group)
            group, lacing = [], 0
        group.append(packet)
        lacing += len(packet) // 255 + 1
    groups.append(group)
    done = 0
    for index, group in enumerate(groups):
        done += len(group)
        if index == len(groups) - 1:  # end of stream, and where the music ends
            end = skip + len(samples) * _GRANULE
            pages.append(_ogg_page(group, end, index + 2, flags=0x04))
        else:
            pages.append(_ogg_page(group, done * VOICE_FRAME * _GRANULE, index + 2))
    return b"".join(pages)


def render_audio(
    music: Performance | bytes,
    settings: RenderSettings | None = None,
    audio_format: str = "mp3",
) -> bytes:
    """A preview of a performance (or of a MIDI file's notes): an MP3 (``audio_format`` "mp3")
    or an OGG/Opus voice note ("voice"); raises RenderError when the tools are missing."""
    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"audio_format is one of {AUDIO_FORMATS}, not {audio_format!r}")
    settings = settings or RenderSettings()
    ready, reason = audio_available(settings, audio_format)
    if not ready:
        raise RenderError(f"no audio preview: {reason}.")
    performance = music if isinstance(music, Performance) else Performance.of_midi(music)
    voice = audio_format == "voice"
    rate = VOICE_SAMPLE_RATE if voice else SAMPLE_RATE
    synthesizer = _Synthesizer.for_soundfont(settings.soundfont_path(), rate)
    ceiling = loudness.CEILING_DBTP - (VOICE_HEADROOM_DB if voice else 0.0)
    played = synthesizer.play(performance, settings.gm_program)
    samples = _fade_out(loudness.normalise(played, rate, ceiling), rate)
    return encode_voice(samples) if voice else encode_mp3(samples)
