import gzip
import json
from pathlib import Path

from music21 import converter

from generator.training import corpus
from generator.training.corpus import Song, is_validation, preprocess

KERN_TEMPLATE = """**kern
*M{meter}
*k[{sig}]
*{key}:
{body}
==
*-
"""


def write_kern(
    folder: Path, name: str, body: str, key: str = "G", sig: str = "f#", meter: str = "2/4"
) -> Path:
    path = folder / name
    path.write_text(KERN_TEMPLATE.format(body=body, key=key, sig=sig, meter=meter))
    return path


def test_filter_reports_why_songs_were_dropped(tmp_path):
    write_kern(tmp_path, "good.krn", "4g\n8a\n8b\n=1\n2g")
    write_kern(tmp_path, "triplets.krn", "12g\n12a\n12b\n4g\n=1\n2g")
    write_kern(tmp_path, "chords.krn", "4g 4b\n4a\n=1\n2g")
    write_kern(tmp_path, "rests_only.krn", "2r\n=1\n2r")
    (tmp_path / "broken.krn").write_text("this is not humdrum at all\n*-\n")
    result = preprocess(tmp_path, cache_dir=tmp_path / "cache", workers=1, progress=False)
    assert [s.song_id for s in result.songs] == ["good.krn"]
    assert result.dropped == {
        corpus.DROP_DURATION: 1,
        corpus.DROP_POLYPHONIC: 1,
        corpus.DROP_EMPTY: 1,
        corpus.DROP_UNREADABLE: 1,
    }
    assert "kept 1 of 5 songs" in result.summary()


def test_songs_are_moved_to_c_major_and_a_minor(tmp_path):
    write_kern(tmp_path, "g_major.krn", "4g\n8a\n8b\n=1\n2g")  # G4 A4 B4 G4
    write_kern(tmp_path, "e_minor.krn", "4e\n4b\n=1\n2e", key="e")  # E4 B4 E4 in E minor
    songs = {s.song_id: s.tokens for s in preprocess(tmp_path, cache_dir=tmp_path / "c").songs}
    assert songs["g_major.krn"][::2][:3] == ("72", "_", "74")  # G4 + 5 semitones = C5
    assert [t for t in songs["g_major.krn"] if t != "_"] == ["72", "74", "76", "72"]
    assert [t for t in songs["e_minor.krn"] if t != "_"] == ["69", "76", "69"]  # A4 E5 A4


def test_key_is_analysed_when_the_file_names_none(tmp_path):
    path = write_kern(
        tmp_path, "f.krn", "4f\n4a\n=1\n4cc\n4a\n=2\n4b-\n4g\n=3\n2f", key="X", sig="b-"
    )
    path.write_text(path.read_text().replace("*X:\n", ""))
    tokens = preprocess(tmp_path, cache_dir=tmp_path / "c").songs[0].tokens
    onsets = [t for t in tokens if t != "_"]
    assert onsets[0] == onsets[-1] == "60"  # F major → C major, F4 → C4


def test_second_run_reads_the_cache_not_the_files(tmp_path):
    write_kern(tmp_path, "a.krn", "4g\n4a\n=1\n2g")
    cache = tmp_path / "cache"
    first = preprocess(tmp_path, cache_dir=cache)
    (cache_file,) = cache.glob("corpus-*.json.gz")
    payload = json.loads(gzip.decompress(cache_file.read_bytes()))
    payload["songs"].append(["from-cache", "60 _", "2/4", 0, "major", []])
    cache_file.write_bytes(gzip.compress(json.dumps(payload).encode()))
    second = preprocess(tmp_path, cache_dir=cache)
    assert second.songs[-1] == Song("from-cache", ("60", "_"), "2/4")
    assert second.data_hash == first.data_hash
    write_kern(tmp_path, "b.krn", "4a\n4g\n=1\n2g")  # new data → new key → parsed again
    third = preprocess(tmp_path, cache_dir=cache)
    assert third.data_hash != first.data_hash
    assert sorted(s.song_id for s in third.songs) == ["a.krn", "b.krn"]


def test_split_is_by_song_and_deterministic():
    ids = [f"erk/deut{i:04}.krn" for i in range(2000)]
    valid = [i for i in ids if is_validation(i)]
    assert 150 < len(valid) < 250
    assert valid == [i for i in ids if is_validation(i)]
    train, held_out = corpus.Corpus([Song(i, ("60",)) for i in ids]).split()
    assert {s.song_id for s in held_out} == set(valid)
    assert not {s.song_id for s in train} & set(valid)


def test_other_formats_load(tmp_path):
    abc = (
        "X:1\nT:Test\nM:2/4\nL:1/8\nK:D\nDF AF|d2 A2|]\n\n"
        "X:2\nT:Two\nM:2/4\nL:1/8\nK:G\nGA Bc|d4|]\n"
    )
    (tmp_path / "songs.abc").write_text(abc)
    score = converter.parse(tmp_path / "songs.abc")
    score.scores[0].write("musicxml", fp=tmp_path / "one.musicxml")
    score.scores[1].write("midi", fp=tmp_path / "two.mid")
    result = preprocess(tmp_path, cache_dir=tmp_path / "cache", workers=1)
    ids = sorted(s.song_id for s in result.songs)
    assert ids == ["one.musicxml", "songs.abc#0", "songs.abc#1", "two.mid"]


def test_builtin_essen_collection_needs_no_files():
    source = corpus.resolve_source(corpus.BUILTIN_ESSEN)
    assert source.root is None and len(source.files) >= 30
    assert all(p.suffix == ".abc" and "essenFolksong" in str(p) for p in source.files)


def test_meter_upbeat_mode_and_phrase_endings_survive_preprocessing(tmp_path):
    # 3/4 with a quarter-note upbeat, two phrases; the last bar completes the upbeat
    body = "{4d\n=1\n4g\n4a\n4b\n=2\n2.g}\n=3\n{4b\n4a\n4g\n=4\n2a}\n4d\n=5\n2g"
    write_kern(tmp_path, "waltz.krn", body, meter="3/4")
    (song,) = preprocess(tmp_path, cache_dir=tmp_path / "c").songs
    assert (song.meter, song.pickup, song.mode) == ("3/4", 4, "major")
    assert len(song.tokens) == 4 + 5 * 12  # the last bar is filled by its final note
    assert song.tokens[-12:] == ("72",) + ("_",) * 11  # G4 → C5, held to the bar line
    assert song.phrase_ends == (28, 48)
    assert song.layout.position_of(4) == 0 and song.layout.position_of(0) == 8


def test_long_value_meters_are_rescaled(tmp_path):
    write_kern(tmp_path, "breve.krn", "1g\n2a\n2b\n=1\n1.g", meter="4/2")
    (song,) = preprocess(tmp_path, cache_dir=tmp_path / "c").songs
    assert song.meter == "4/4"
    assert [t for t in song.tokens if t != "_"] == ["72", "74", "76", "72"]
    assert len(song.tokens) == 32 and song.tokens[16:] == ("72",) + ("_",) * 15


def test_songs_without_one_known_meter_or_with_broken_bars_are_dropped(tmp_path):
    write_kern(tmp_path, "free.krn", "4g\n4a\n=1\n2g", meter="X")
    write_kern(tmp_path, "odd.krn", "4g\n4a\n4b\n4a\n4g\n=1\n2g", meter="5/4")
    changing = write_kern(tmp_path, "changing.krn", "4g\n4a\n=1\n*M3/4\n4g\n4a\n4b\n=2\n2.g")
    write_kern(tmp_path, "short_bar.krn", "4g\n4a\n=1\n4g\n=2\n4g\n4a\n=3\n2g")
    result = preprocess(tmp_path, cache_dir=tmp_path / "c", workers=1, progress=False)
    assert changing.exists() and not result.songs
    assert result.dropped == {
        corpus.DROP_NO_METER: 1,
        corpus.DROP_OTHER_METER: 1,
        corpus.DROP_CHANGING_METER: 1,
        corpus.DROP_IRREGULAR_BARS: 1,
    }
