"""Loading songs and turning them into training sequences.

The method: parse each file with music21, keep monophonic songs in one meter the model knows
(long-value meters such as 4/2 or 6/4 are rescaled to 4/4 or 6/8, see
:func:`~generator.form.normalise_meter`) whose every duration is one the model can learn
(:data:`~generator.encoding.ACCEPTABLE_DURATIONS`) and whose bars are all whole, transpose each to
C major or A minor, and encode it as 16th-note steps with its meter, upbeat, mode and phrase
endings. The last bar is filled by the final note, as a singer holds it, so every song ends on a
bar line. The result is cached, keyed by the content of the data and the settings, because parsing
five thousand files is the slowest part of training.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from generator import encoding, form
from generator.keys import shift_to_reference

SONG_SUFFIXES = (".krn", ".abc", ".mxl", ".musicxml", ".xml", ".mid", ".midi")
BUILTIN_ESSEN = "essen"  # music21's bundled Essen collection (ABC), needs no files of ours
CACHE_FORMAT = 2  # bump when the encoding or the filter changes meaning

# Reasons a song is left out of the training data, as reported to the user.
DROP_UNREADABLE = "unreadable file"
DROP_POLYPHONIC = "not monophonic (chords or several parts)"
DROP_DURATION = "duration outside the accepted set"
DROP_EMPTY = "no notes"
DROP_NO_METER = "no time signature (*MX or none)"
DROP_CHANGING_METER = "the meter changes within the song"
DROP_OTHER_METER = "meter outside 2/4, 3/4, 4/4, 3/8, 6/8 (and their long-value forms)"
DROP_IRREGULAR_BARS = "a bar that does not fill its meter"


@dataclass(frozen=True, slots=True)
class Song:
    """One encoded song: a stable id (its path, ``#n`` inside multi-song files), its steps in
    C major or A minor, and its form: meter, upbeat length in steps, mode and the steps at which
    its phrases end (empty where the source marks none)."""

    song_id: str
    tokens: tuple[str, ...]
    meter: str = "4/4"
    pickup: int = 0
    mode: str = "major"
    phrase_ends: tuple[int, ...] = ()

    @property
    def layout(self) -> form.Layout:
        return form.Layout(form.METER_BY_NAME[self.meter], self.pickup, len(self.tokens))


@dataclass(slots=True)
class Corpus:
    """The songs kept, the count of songs dropped per reason, and the hash that identifies them."""

    songs: list[Song]
    dropped: Counter[str] = field(default_factory=Counter)
    data_hash: str = ""

    @property
    def step_count(self) -> int:
        return sum(len(song.tokens) for song in self.songs)

    def split(self, validation_percent: int = 10) -> tuple[list[Song], list[Song]]:
        """Split by song, not by window, so no validation melody leaks into training."""
        train = [s for s in self.songs if not is_validation(s.song_id, validation_percent)]
        valid = [s for s in self.songs if is_validation(s.song_id, validation_percent)]
        return train, valid

    def summary(self) -> str:
        total = len(self.songs) + sum(self.dropped.values())
        lines = [f"kept {len(self.songs)} of {total} songs ({self.step_count} steps)"]
        lines += [f"  dropped {n}: {reason}" for reason, n in sorted(self.dropped.items())]
        return "\n".join(lines)


def is_validation(song_id: str, validation_percent: int = 10) -> bool:
    """Deterministic per-song split: the same song lands on the same side on every machine."""
    digest = hashlib.sha256(song_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < validation_percent


@dataclass(frozen=True, slots=True)
class SongSource:
    """Where songs come from: a folder of files or a built-in collection name."""

    root: Path | None
    files: tuple[Path, ...]

    def relative_name(self, path: Path) -> str:
        if self.root is None:
            return path.name
        return path.relative_to(self.root).as_posix()


def resolve_source(data: str | Path) -> SongSource:
    """Find the song files of a folder (recursively), or of the built-in ``essen`` collection."""
    if str(data) == BUILTIN_ESSEN:
        from music21 import corpus as m21corpus

        paths = sorted(
            Path(p) for p in m21corpus.getPaths(fileExtensions=["abc"]) if "essenFolksong" in str(p)
        )
        return SongSource(root=None, files=tuple(paths))
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no such data folder: {root} (give a folder of .krn/.abc/.mxl/.mid files "
            f"or '{BUILTIN_ESSEN}' for music21's bundled Essen collection)"
        )
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SONG_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no song files ({', '.join(SONG_SUFFIXES)}) under {root}")
    return SongSource(root=root, files=tuple(files))


def content_hash(source: SongSource, settings: dict[str, object]) -> str:
    """Hash of every file's name and bytes plus the settings: cache key and the model's data id."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in source.files:
        digest.update(source.relative_name(path).encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _scores_in(parsed: object) -> list[object]:
    from music21 import stream as m21stream

    if isinstance(parsed, m21stream.Opus):
        return list(parsed.scores)
    return [parsed]


def check_and_encode(
    score: object, phrase_marks: list[bool] | None = None
) -> tuple[Song | None, str | None]:
    """Apply the filter and encoding to one parsed song: (song, None) or (None, drop reason).

    ``phrase_marks`` says, for each note and rest of the source in order, whether a phrase ends
    on it (kern's ``}``); the returned song carries those endings as step indices.
    """
    from music21 import chord as m21chord
    from music21 import key as m21key
    from music21 import meter as m21meter
    from music21 import stream as m21stream

    assert isinstance(score, m21stream.Stream)
    parts = (
        [p for p in score.parts if p.flatten().notes] if isinstance(score, m21stream.Score) else []
    )
    if len(parts) > 1:
        return None, DROP_POLYPHONIC
    flat = score.flatten()
    notes_and_rests = [n for n in flat.notesAndRests if not n.duration.isGrace]
    if not any(not n.isRest for n in notes_and_rests):
        return None, DROP_EMPTY
    if any(isinstance(n, m21chord.Chord) for n in notes_and_rests):
        return None, DROP_POLYPHONIC
    signatures = {ts.ratioString for ts in flat.getElementsByClass(m21meter.TimeSignature)}
    if not signatures:
        return None, DROP_NO_METER
    if len(signatures) > 1:
        return None, DROP_CHANGING_METER
    numerator, _, denominator = signatures.pop().partition("/")
    normal = form.normalise_meter(int(numerator), int(denominator))
    if normal is None:
        return None, DROP_OTHER_METER
    meter_name, scale = normal
    lengths = [Fraction(n.quarterLength).limit_denominator(64) * scale for n in notes_and_rests]
    if any(float(length) not in encoding.ACCEPTABLE_DURATIONS for length in lengths):
        return None, DROP_DURATION
    meter = form.METER_BY_NAME[meter_name]
    pickup = _pickup_steps(parts[0] if parts else score, scale, meter)
    if pickup is None:
        return None, DROP_IRREGULAR_BARS
    keys = list(flat.getElementsByClass(m21key.Key))
    song_key = keys[0] if keys else score.analyze("key")
    shift = shift_to_reference(song_key.tonic.pitchClass, song_key.mode)
    events = _scaled_events(notes_and_rests, lengths)
    while events and events[-1].pitch is None:  # trailing silence is not part of the tune
        events.pop()
    steps = sum(e.steps for e in events)
    bars = -(-(steps - pickup) // meter.steps_per_bar)
    filled = pickup + bars * meter.steps_per_bar
    events[-1] = encoding.Event(events[-1].pitch, events[-1].steps + filled - steps)
    transposed = [
        encoding.Event(None if e.pitch is None else e.pitch + shift, e.steps) for e in events
    ]
    song = Song(
        song_id="",
        tokens=tuple(encoding.events_to_tokens(transposed)),
        meter=meter_name,
        pickup=pickup,
        mode="minor" if song_key.mode == "minor" else "major",
        phrase_ends=_phrase_ends(phrase_marks, lengths, filled),
    )
    return song, None


def _scaled_events(elements: list, lengths: list[Fraction]) -> list[encoding.Event]:
    """Events of the rescaled song, tied notes merged into one."""
    events: list[encoding.Event] = []
    for element, length in zip(elements, lengths, strict=True):
        steps = int(length / Fraction(encoding.STEP_QL))
        pitch = None if element.isRest else element.pitch.midi
        tie = element.tie.type if pitch is not None and element.tie is not None else None
        if tie in ("stop", "continue") and events and events[-1].pitch == pitch:
            events[-1] = encoding.Event(pitch, events[-1].steps + steps)
        else:
            events.append(encoding.Event(pitch, steps))
    return events


def _pickup_steps(part: object, scale: Fraction, meter: form.Meter) -> int | None:
    """The upbeat's length in steps (0 without one), or None when an inner bar is not whole.

    The first bar may be short (an upbeat) and the last bar may be short (it usually completes
    the upbeat); every other bar must fill the meter, or positions in the bar would be wrong.
    """
    from music21 import stream as m21stream

    assert isinstance(part, m21stream.Stream)
    measures = list(part.getElementsByClass(m21stream.Measure))
    if not measures:
        return 0
    bar = meter.steps_per_bar
    sizes = [Fraction(m.duration.quarterLength).limit_denominator(64) * scale * 4 for m in measures]
    if any(size.denominator != 1 for size in sizes):
        return None
    whole = [int(size) for size in sizes]
    if any(size != bar for size in whole[1:-1]) or whole[-1] > bar or not 0 < whole[0] <= bar:
        return None
    return whole[0] % bar


def _phrase_ends(marks: list[bool] | None, lengths: list[Fraction], total: int) -> tuple[int, ...]:
    if not marks or len(marks) != len(lengths):
        return ()
    ends: list[int] = []
    position = Fraction(0)
    for marked, length in zip(marks, lengths, strict=True):
        position += length * 4
        if marked:
            ends.append(min(int(position), total))
    return tuple(ends)


def kern_phrase_marks(text: str) -> list[bool]:
    """For each note and rest of a one-spine kern song, whether a phrase ends on it (``}``)."""
    marks: list[bool] = []
    for line in text.splitlines():
        token = line.split("\t")[0].strip()
        if not token or token[0] in "*!=." or "q" in token:
            continue
        marks.append("}" in token)
    return marks


def _process_file(args: tuple[str, str]) -> list[tuple[str, Song | None, str | None]]:
    """Worker: parse one file (maybe holding several songs) and check/encode each song in it."""
    path, name = args
    from dataclasses import replace

    from music21 import converter

    try:
        parsed = converter.parse(path)
        scores = _scores_in(parsed)
    except Exception:  # music21 raises many types on malformed input; all mean "unreadable"
        return [(name, None, DROP_UNREADABLE)]
    marks = None
    if path.lower().endswith(".krn") and len(scores) == 1:
        marks = kern_phrase_marks(Path(path).read_text(encoding="utf-8", errors="replace"))
    results: list[tuple[str, Song | None, str | None]] = []
    for index, score in enumerate(scores):
        song_id = name if len(scores) == 1 else f"{name}#{index}"
        try:
            song, reason = check_and_encode(score, marks)
        except Exception:
            song, reason = None, DROP_UNREADABLE
        results.append((song_id, None if song is None else replace(song, song_id=song_id), reason))
    return results


def default_cache_dir() -> Path:
    return Path(os.environ.get("MELODYBOT_CACHE_DIR", Path.home() / ".cache" / "melodybot"))


def preprocess(
    data: str | Path,
    *,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Corpus:
    """Load, filter, transpose and encode every song under ``data``, using the cache when it can."""
    source = resolve_source(data)
    settings = {
        "format": CACHE_FORMAT,
        "durations": list(encoding.ACCEPTABLE_DURATIONS),
        "step": encoding.STEP_QL,
    }
    data_hash = content_hash(source, settings)
    cache_path = (cache_dir or default_cache_dir()) / f"corpus-{data_hash[:24]}.json.gz"
    if cache_path.exists():
        return _read_cache(cache_path, data_hash)

    jobs = [(str(path), source.relative_name(path)) for path in source.files]
    corpus = Corpus(songs=[], data_hash=data_hash)
    for results in _map_parallel(jobs, workers, progress):
        for _song_id, song, reason in results:
            if song is None:
                corpus.dropped[reason or DROP_UNREADABLE] += 1
            else:
                corpus.songs.append(song)
    _write_cache(cache_path, corpus)
    return corpus


def quiet_music21() -> None:
    """music21 warns on every odd Humdrum token in ESAC (``*MX`` …); the drop counts already
    tell the story, so the parsers (this process and every worker) stay quiet."""
    import logging
    import warnings

    logging.getLogger("music21").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="music21")
    from music21 import environment

    # Each music21 module holds its own Environment, so the method is silenced on the class.
    environment.Environment.warn = lambda *args, **kwargs: None  # type: ignore[method-assign]


def _map_parallel(
    jobs: list[tuple[str, str]], workers: int | None, progress: bool
) -> Iterator[list[tuple[str, Song | None, str | None]]]:
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="parsing songs", unit="file", disable=not progress)
    with bar:
        if workers == 1 or len(jobs) < 8:
            for job in jobs:
                yield _process_file(job)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers, initializer=quiet_music21) as pool:
            for results in pool.map(_process_file, jobs, chunksize=8):
                yield results
                bar.update()


def _write_cache(path: Path, corpus: Corpus) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "data_hash": corpus.data_hash,
        "dropped": dict(corpus.dropped),
        "songs": [
            [s.song_id, " ".join(s.tokens), s.meter, s.pickup, s.mode, list(s.phrase_ends)]
            for s in corpus.songs
        ],
    }
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as handle:
        json.dump(payload, handle)
    tmp.replace(path)  # atomic: a crash never leaves a half-written cache behind


def _read_cache(path: Path, data_hash: str) -> Corpus:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        payload = json.load(handle)
    songs = [
        Song(song_id, tuple(text.split()), meter, pickup, mode, tuple(ends))
        for song_id, text, meter, pickup, mode, ends in payload["songs"]
    ]
    return Corpus(songs=songs, dropped=Counter(payload["dropped"]), data_hash=data_hash)
