"""Loading songs and turning them into training sequences.

The method: parse each file with music21, keep monophonic songs whose every duration is one the
model can learn (:data:`~generator.encoding.ACCEPTABLE_DURATIONS`), transpose each to C major or
A minor, and encode it as 16th-note steps. The result is cached, keyed by the content of the data
and the settings, because parsing five thousand files is the slowest part of training.
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
from pathlib import Path

from tqdm import tqdm

from generator import encoding
from generator.keys import shift_to_reference

SONG_SUFFIXES = (".krn", ".abc", ".mxl", ".musicxml", ".xml", ".mid", ".midi")
BUILTIN_ESSEN = "essen"  # music21's bundled Essen collection (ABC), needs no files of ours
CACHE_FORMAT = 1  # bump when the encoding or the filter changes meaning

# Reasons a song is left out of the training data, as reported to the user.
DROP_UNREADABLE = "unreadable file"
DROP_POLYPHONIC = "not monophonic (chords or several parts)"
DROP_DURATION = "duration outside the accepted set"
DROP_EMPTY = "no notes"


@dataclass(frozen=True, slots=True)
class Song:
    """One encoded song: a stable id (its path, ``#n`` inside multi-song files) and its steps."""

    song_id: str
    tokens: tuple[str, ...]


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


def check_and_encode(score: object) -> tuple[tuple[str, ...] | None, str | None]:
    """Apply the filter and encoding to one parsed song: (tokens, None) or (None, drop reason)."""
    from music21 import chord as m21chord
    from music21 import key as m21key
    from music21 import stream as m21stream

    assert isinstance(score, m21stream.Stream)
    parts = (
        [p for p in score.parts if p.flatten().notes] if isinstance(score, m21stream.Score) else []
    )
    if len(parts) > 1:
        return None, DROP_POLYPHONIC
    flat = score.flatten()
    notes_and_rests = list(flat.notesAndRests)
    if not any(not n.isRest for n in notes_and_rests):
        return None, DROP_EMPTY
    if any(isinstance(n, m21chord.Chord) for n in notes_and_rests):
        return None, DROP_POLYPHONIC
    if any(float(n.quarterLength) not in encoding.ACCEPTABLE_DURATIONS for n in notes_and_rests):
        return None, DROP_DURATION
    keys = list(flat.getElementsByClass(m21key.Key))
    song_key = keys[0] if keys else score.analyze("key")
    shift = shift_to_reference(song_key.tonic.pitchClass, song_key.mode)
    events = encoding.stream_to_events(score)
    transposed = [
        encoding.Event(None if e.pitch is None else e.pitch + shift, e.steps) for e in events
    ]
    return tuple(encoding.events_to_tokens(transposed)), None


def _process_file(args: tuple[str, str]) -> list[tuple[str, tuple[str, ...] | None, str | None]]:
    """Worker: parse one file (maybe holding several songs) and check/encode each song in it."""
    path, name = args
    from music21 import converter

    try:
        parsed = converter.parse(path)
        scores = _scores_in(parsed)
    except Exception:  # music21 raises many types on malformed input; all mean "unreadable"
        return [(name, None, DROP_UNREADABLE)]
    results: list[tuple[str, tuple[str, ...] | None, str | None]] = []
    for index, score in enumerate(scores):
        song_id = name if len(scores) == 1 else f"{name}#{index}"
        try:
            tokens, reason = check_and_encode(score)
        except Exception:
            tokens, reason = None, DROP_UNREADABLE
        results.append((song_id, tokens, reason))
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
        for song_id, tokens, reason in results:
            if tokens is None:
                corpus.dropped[reason or DROP_UNREADABLE] += 1
            else:
                corpus.songs.append(Song(song_id, tokens))
    _write_cache(cache_path, corpus)
    return corpus


def _map_parallel(
    jobs: list[tuple[str, str]], workers: int | None, progress: bool
) -> Iterator[list[tuple[str, tuple[str, ...] | None, str | None]]]:
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="parsing songs", unit="file", disable=not progress)
    with bar:
        if workers == 1 or len(jobs) < 8:
            for job in jobs:
                yield _process_file(job)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for results in pool.map(_process_file, jobs, chunksize=8):
                yield results
                bar.update()


def _write_cache(path: Path, corpus: Corpus) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "data_hash": corpus.data_hash,
        "dropped": dict(corpus.dropped),
        "songs": [[s.song_id, " ".join(s.tokens)] for s in corpus.songs],
    }
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as handle:
        json.dump(payload, handle)
    tmp.replace(path)  # atomic: a crash never leaves a half-written cache behind


def _read_cache(path: Path, data_hash: str) -> Corpus:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        payload = json.load(handle)
    songs = [Song(song_id, tuple(text.split())) for song_id, text in payload["songs"]]
    return Corpus(songs=songs, dropped=Counter(payload["dropped"]), data_hash=data_hash)
