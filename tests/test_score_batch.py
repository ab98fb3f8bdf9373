"""Many score pictures from one MuseScore process, through the real MuseScore and verovio.

A MuseScore that misbehaves is a script first on PATH (as in test_render.py): it logs each start,
then crashes, hangs or runs the real MuseScore with the same arguments.
"""

import io
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from generator.render import RenderError, RenderSettings, render_png, render_pngs
from generator.render.score import BATCH_TIMEOUT_SHARE, MUSESCORE_NAMES
from tests.test_render import _alive, musicxml, require

# A score MuseScore 3 reads as "not a valid MusicXML file" and then crashes on; verovio draws it
# as an empty page. It passes prepare_musicxml, so only the renderers can fail on it.
NO_PARTS = b'<?xml version="1.0"?><score-partwise version="3.1"><part-list/></score-partwise>'


def pixels(png: bytes) -> tuple[tuple[int, int], bytes]:
    image = Image.open(io.BytesIO(png))
    return image.size, image.convert("L").tobytes()


class Wrapper:
    """``mscore3`` first on PATH: logs its arguments, runs ``body``, else the real MuseScore."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch, body: str = "") -> None:
        real = next(path for name in MUSESCORE_NAMES if (path := shutil.which(name)))
        self.starts = folder / "starts.log"
        self.children = folder / "children.pid"
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        script = bin_dir / "mscore3"
        script.write_text(
            "#!/bin/bash\n"
            f'echo "$*" >> {self.starts}\n'
            + body.format(children=self.children, real=real)
            + f'exec {real} "$@"\n'
        )
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def started(self) -> list[str]:
        return self.starts.read_text().splitlines() if self.starts.exists() else []

    def children_alive(self) -> list[int]:
        pids = self.children.read_text().split() if self.children.exists() else []
        deadline = time.monotonic() + 5
        while any(_alive(int(p)) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        return [int(p) for p in pids if _alive(int(p))]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    folder = tmp_path / "scratch"
    folder.mkdir()
    return folder


def test_a_batch_is_one_musescore_run_with_the_pictures_of_single_runs(
    tmp_path, monkeypatch, scratch
):
    require("musescore")
    settings = RenderSettings(renderer="musescore", scratch_dir=scratch)
    scores = [musicxml(4, "first"), musicxml(96, "two pages"), musicxml(8, "third")]
    alone = [render_png(score, settings) for score in scores]
    wrapper = Wrapper(tmp_path, monkeypatch)
    batch = render_pngs(scores, settings)
    assert [pixels(png) for png in batch] == [pixels(png) for png in alone]
    assert len(wrapper.started()) == 1 and " -j " in wrapper.started()[0]
    assert Image.open(io.BytesIO(batch[1])).height > 2 * Image.open(io.BytesIO(batch[0])).height
    assert list(scratch.iterdir()) == []


def test_an_empty_batch_starts_nothing(tmp_path, monkeypatch, scratch):
    require("musescore")
    wrapper = Wrapper(tmp_path, monkeypatch)
    assert render_pngs([], RenderSettings(scratch_dir=scratch)) == []
    assert wrapper.started() == []


def test_with_verovio_each_score_is_drawn_on_its_own(tmp_path, monkeypatch):
    require("verovio")
    settings = RenderSettings(renderer="verovio")
    scores = [musicxml(4), musicxml(8)]
    wrapper = Wrapper(tmp_path, monkeypatch)
    assert render_pngs(scores, settings) == [render_png(score, settings) for score in scores]
    assert wrapper.started() == []


# A helper process left behind; its output does not hold MuseScore's pipes open, so a crash is
# seen at once and only a hang waits for the timeout.
FORK_A_CHILD = "sleep 300 >/dev/null 2>&1 &\necho $! >> {children}\n"
ON_A_JOB = 'case " $* " in *" -j "*)\n'
END = ";;\nesac\n"


FAULTS = {
    "crashes on the job": (f"{ON_A_JOB}{FORK_A_CHILD}exit 134{END}", "musescore"),
    "hangs on the job": (f"{ON_A_JOB}{FORK_A_CHILD}exec sleep 300{END}", "musescore"),
    "crashes after it drew all": (f'{ON_A_JOB}{{real}} "$@"\nexit 134{END}', "musescore"),
    "crashes on every start": (f"{FORK_A_CHILD}exit 134\n", "verovio"),
}


@pytest.mark.parametrize(
    ("fault", "body", "drawn_by"),
    [pytest.param(fault, *how, id=fault) for fault, how in FAULTS.items()],
)
def test_a_failed_batch_falls_back_one_by_one_and_leaves_nothing(
    tmp_path, monkeypatch, scratch, fault, body, drawn_by
):
    require("musescore")
    require("verovio")
    timeout_s = 3.0
    scores = [musicxml(4, "first"), musicxml(8, "second"), musicxml(12, "third")]
    expected = [render_png(s, RenderSettings(renderer=drawn_by)) for s in scores]
    wrapper = Wrapper(tmp_path, monkeypatch, body)
    started = time.monotonic()
    batch = render_pngs(scores, RenderSettings(timeout_s=timeout_s, scratch_dir=scratch))
    elapsed = time.monotonic() - started
    assert [pixels(png) for png in batch] == [pixels(png) for png in expected], fault
    batch_timeout_s = timeout_s * (1 + BATCH_TIMEOUT_SHARE * (len(scores) - 1))
    if "hangs" in fault:  # stopped at its timeout, then each score drawn alone
        assert batch_timeout_s <= elapsed < batch_timeout_s + len(scores) * timeout_s
    else:  # a crash is seen at once
        assert elapsed < batch_timeout_s
    starts = wrapper.started()
    assert " -j " in starts[0] and not any(" -j " in s for s in starts[1:])
    # A clean crash after every picture was drawn still costs only the last one a second run:
    # it may have been cut short. Otherwise every score is drawn again.
    assert len(starts) == 1 + (1 if "after" in fault else len(scores))
    assert wrapper.children_alive() == []
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("renderer", ["musescore", "auto"])
def test_one_unreadable_score_costs_the_others_nothing(tmp_path, monkeypatch, scratch, renderer):
    require("musescore")
    require("verovio")
    settings = RenderSettings(renderer=renderer, scratch_dir=scratch)
    good = [musicxml(4, "first"), musicxml(8, "third")]
    alone = [render_png(score, settings) for score in good]
    wrapper = Wrapper(tmp_path, monkeypatch)
    batch = render_pngs([good[0], b"<not xml", NO_PARTS, good[1]], settings)
    assert pixels(batch[0]) == pixels(alone[0]) and pixels(batch[3]) == pixels(alone[1])
    assert isinstance(batch[1], RenderError) and "not valid MusicXML" in str(batch[1])
    if renderer == "musescore":
        assert isinstance(batch[2], RenderError) and str(batch[2]) == "MuseScore failed."
    else:  # verovio draws what MuseScore could not
        assert pixels(batch[2]) == pixels(render_png(NO_PARTS, RenderSettings(renderer="verovio")))
    assert " -j " in wrapper.started()[0]
    assert list(scratch.iterdir()) == []
