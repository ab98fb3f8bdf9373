"""Score PNGs: MuseScore first, verovio as the fallback, one trimmed white image either way.

Several scores can be drawn by one MuseScore process (its job mode, ``-j``): starting MuseScore is
most of what one picture costs, so a batch pays it once. A batch never makes a score worse off
than drawing it alone: whatever picture the batch did not deliver (a crash, a hang, a score it
could not read) is drawn one by one, with the usual fallback to verovio.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

from generator.render import tools
from generator.render.errors import RenderError
from generator.render.settings import RenderSettings

MUSESCORE_NAMES = ("mscore3", "musescore3", "mscore", "musescore")
MUSESCORE_DPI = 190  # an A4 page at 190 dpi is ~1,570 px wide; trimmed, about 1,400
MARGIN_PX = 24
# How long one MuseScore process drawing a batch may take: ``timeout_s`` as for one score, plus
# this share of it for each further score. MuseScore's start is paid once per process, so a
# further score costs it about a third of what one score alone costs (bench/bench_render.py);
# a half leaves a batch at least the headroom one score gets, and a hung batch is stopped long
# before n timeouts would have passed. Any score it did not deliver is then drawn alone.
BATCH_TIMEOUT_SHARE = 0.5

# SMuFL metronome glyphs verovio writes in its music font; cairosvg has no such font, so the
# tempo's note would draw as a box. These are the same symbols from Unicode's music block.
_SMUFL_TEXT = {"\ueca5": "♩", "\ueca3": "𝅗𝅥", "\ueca7": "♪", "\uecb7": "."}


def available_png_renderers() -> list[str]:
    found = []
    if tools.find(*MUSESCORE_NAMES):
        found.append("musescore")
    try:
        import cairosvg  # noqa: F401
        import verovio  # noqa: F401

        found.append("verovio")
    except (ImportError, OSError):  # cairosvg raises OSError when libcairo is missing
        pass
    return found


def prepare_musicxml(musicxml: bytes) -> bytes:
    """Make sure the first measure states its clef.

    music21 writes no ``<clef>`` for a part that never set one (every ESAC song parsed from
    **kern is such a part). MuseScore then assumes a treble clef, but verovio draws none at all.
    Stating the treble clef explicitly makes both renderers show it.
    """
    try:
        root = ET.fromstring(musicxml)
    except ET.ParseError as error:
        raise RenderError(f"the score is not valid MusicXML ({error}).") from None
    for part in root.iter("part"):
        measure = part.find("measure")
        if measure is None:
            continue
        attributes = measure.find("attributes")
        if attributes is None:
            attributes = ET.Element("attributes")
            measure.insert(0, attributes)
        if attributes.find("clef") is None:
            clef = ET.SubElement(attributes, "clef")
            ET.SubElement(clef, "sign").text = "G"
            ET.SubElement(clef, "line").text = "2"
            _order_attributes(attributes)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _order_attributes(attributes: ET.Element) -> None:
    """MusicXML fixes the order of children inside <attributes>; clef comes after time."""
    order = [
        "footnote",
        "level",
        "divisions",
        "key",
        "time",
        "staves",
        "part-symbol",
        "instruments",
        "clef",
        "staff-details",
        "transpose",
        "directive",
        "measure-style",
    ]
    children = sorted(attributes, key=lambda e: order.index(e.tag) if e.tag in order else 99)
    for child in list(attributes):
        attributes.remove(child)
    attributes.extend(children)


def render_png(musicxml: bytes, settings: RenderSettings | None = None) -> bytes:
    """The score as one PNG; raises RenderError if no renderer works."""
    settings = settings or RenderSettings()
    return _draw_alone(prepare_musicxml(musicxml), _usable_renderers(settings), settings)


def render_pngs(
    musicxmls: Sequence[bytes], settings: RenderSettings | None = None
) -> list[bytes | RenderError]:
    """Each score as the PNG :func:`render_png` would give it, or the RenderError it would raise.

    With MuseScore first in line, all the scores go to one MuseScore process; the ones it did not
    deliver are then drawn one by one, so a score that crashes or hangs MuseScore costs the
    others nothing but the wait for its timeout (see BATCH_TIMEOUT_SHARE). Errors are returned
    in place, not raised, so that one bad score leaves the others their pictures.
    """
    settings = settings or RenderSettings()
    results: list[bytes | RenderError | None] = [None] * len(musicxmls)
    try:
        usable = _usable_renderers(settings)
    except RenderError as error:
        return [RenderError(str(error)) for _ in musicxmls]
    prepared: dict[int, bytes] = {}
    for index, musicxml in enumerate(musicxmls):
        try:
            prepared[index] = prepare_musicxml(musicxml)
        except RenderError as error:
            results[index] = error
    if usable[0] == "musescore" and len(prepared) > 1:  # one score: the plain path is as quick
        for index, png in _musescore_batch(prepared, settings).items():
            results[index] = png
    for index, score in prepared.items():
        if results[index] is None:
            try:
                results[index] = _draw_alone(score, usable, settings)
            except RenderError as error:
                results[index] = error
    return results  # type: ignore[return-value]  # every slot is filled by now


def _usable_renderers(settings: RenderSettings) -> list[str]:
    available = available_png_renderers()
    wanted = ["musescore", "verovio"] if settings.renderer == "auto" else [settings.renderer]
    usable = [name for name in wanted if name in available]
    if not usable:
        raise RenderError(f"no score renderer is installed (wanted {', '.join(wanted)}).")
    return usable


def _draw_alone(prepared: bytes, usable: list[str], settings: RenderSettings) -> bytes:
    for renderer in usable[:-1]:  # in "auto", a failing MuseScore falls back to verovio
        try:
            return _RENDERERS[renderer](prepared, settings)
        except RenderError as error:
            tools.log.warning("%s; drawing the score with %s instead", error, usable[-1])
    return _RENDERERS[usable[-1]](prepared, settings)


def _musescore_png(musicxml: bytes, settings: RenderSettings) -> bytes:
    with _scratch(settings) as folder:
        (folder / "score.musicxml").write_bytes(musicxml)
        _run_musescore(["-o", "score.png", "score.musicxml"], settings.timeout_s, folder)
        pages = _written_pages(folder, "score")
        if not pages:
            raise RenderError("MuseScore wrote no picture.")
        return _stack_pages([p.read_bytes() for p in pages], settings.width_px)


def _musescore_batch(scores: dict[int, bytes], settings: RenderSettings) -> dict[int, bytes]:
    """The pictures one MuseScore job delivered, by the scores' keys; the rest are left out.

    The job draws the scores in order, so when MuseScore did not finish cleanly, the last score
    with pages may have been cut short (pages missing, a file half written): it is left out too
    and drawn again alone, as is any score whose pages do not read as pictures.
    """
    done: dict[int, bytes] = {}
    with _scratch(settings) as folder:
        job = []
        for index, score in scores.items():
            (folder / f"score{index}.musicxml").write_bytes(score)
            job.append({"in": f"score{index}.musicxml", "out": f"score{index}.png"})
        (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        timeout_s = settings.timeout_s * (1 + BATCH_TIMEOUT_SHARE * (len(scores) - 1))
        try:
            _run_musescore(["-j", "job.json"], timeout_s, folder)
            finished = True
        except RenderError as error:
            finished = False
            tools.log.warning("%s; drawing the scores it did not deliver one by one", error)
        written = [index for index in scores if _written_pages(folder, f"score{index}")]
        if not finished:
            written = written[:-1]
        for index in written:
            pages = _written_pages(folder, f"score{index}")
            try:
                done[index] = _stack_pages([p.read_bytes() for p in pages], settings.width_px)
            except (OSError, ValueError) as error:  # PIL: not a picture, or a truncated one
                tools.log.warning("MuseScore wrote an unreadable picture (%s)", error)
    return done


@contextlib.contextmanager
def _scratch(settings: RenderSettings) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(
        prefix="melodybot-mscore-", dir=settings.scratch_dir
    ) as scratch:
        yield Path(scratch)


def _run_musescore(arguments: list[str], timeout_s: float, folder: Path) -> None:
    executable = tools.find(*MUSESCORE_NAMES)
    command = [executable, "-r", str(MUSESCORE_DPI), "-T", str(MARGIN_PX), *arguments]
    tools.run(command, timeout_s=timeout_s, what="MuseScore", cwd=folder)


def _written_pages(folder: Path, stem: str) -> list[Path]:
    """``stem``'s pages in order: MuseScore writes ``stem-1.png``, ``stem-2.png``, …"""
    pages = [*folder.glob(f"{stem}.png"), *folder.glob(f"{stem}-*.png")]
    return sorted(pages, key=_page_number)


def _page_number(path: Path) -> int:
    match = re.search(r"-(\d+)\.png$", path.name)
    return int(match[1]) if match else 0


_VEROVIO_OPTIONS = {
    "pageWidth": 2100,
    "adjustPageHeight": True,
    "scale": 50,
    "breaks": "auto",
    "footer": "none",
    "header": "auto",
    "pageMarginLeft": 60,
    "pageMarginRight": 60,
    "pageMarginTop": 40,
    "pageMarginBottom": 40,
}
ONE_PAGE_HEIGHT = 60_000  # verovio's units: tall enough for a 64-bar melody on one page


def _verovio(musicxml: bytes, **options: object):
    import verovio

    toolkit = verovio.toolkit()
    toolkit.setOptions(_VEROVIO_OPTIONS | options)
    if not toolkit.loadData(musicxml.decode("utf-8")):
        raise RenderError("verovio could not read the score.")
    return toolkit


def render_svg(musicxml: bytes) -> bytes:
    """The score as one SVG (verovio), for a web page: crisp at any zoom, the systems broken
    to the page's width and all on one page, the music's glyphs drawn as paths (no web font
    to load) and its words in the reader's own sans-serif font."""
    toolkit = _verovio(prepare_musicxml(musicxml), pageHeight=ONE_PAGE_HEIGHT)
    if toolkit.getPageCount() < 1:
        raise RenderError("verovio drew no page.")
    return _readable_text_glyphs(toolkit.renderToSVG(1)).encode("utf-8")


def _verovio_png(musicxml: bytes, settings: RenderSettings) -> bytes:
    import cairosvg

    toolkit = _verovio(musicxml)
    pages = []
    for page in range(1, toolkit.getPageCount() + 1):
        svg = _readable_text_glyphs(toolkit.renderToSVG(page))
        pages.append(
            cairosvg.svg2png(
                bytestring=svg.encode("utf-8"),
                output_width=settings.width_px,
                background_color="white",
            )
        )
    if not pages:
        raise RenderError("verovio drew no page.")
    return _stack_pages(pages, settings.width_px)


def _readable_text_glyphs(svg: str) -> str:
    def replace(match: re.Match[str]) -> str:
        text = "".join(_SMUFL_TEXT.get(ch, ch) for ch in match[2])
        return f'<tspan font-family="DejaVu Sans, FreeSerif, serif"{match[1]}>{text}</tspan>'

    return re.sub(r'<tspan font-family="Leipzig"([^>]*)>([^<]*)</tspan>', replace, svg)


def _stack_pages(pages: list[bytes], width_px: int) -> bytes:
    """Pages → one image: white background, trimmed to the music, scaled to ``width_px``."""
    from PIL import Image, ImageOps

    images = []
    for data in pages:
        page = Image.open(io.BytesIO(data)).convert("RGBA")
        white = Image.new("RGBA", page.size, "white")
        flat = Image.alpha_composite(white, page).convert("L")
        box = ImageOps.invert(flat).getbbox()
        if box:
            left, top, right, bottom = box
            flat = flat.crop(
                (
                    max(0, left - MARGIN_PX),
                    max(0, top - MARGIN_PX),
                    min(flat.width, right + MARGIN_PX),
                    min(flat.height, bottom + MARGIN_PX),
                )
            )
        images.append(flat)
    widest = max(im.width for im in images)
    sheet = Image.new("L", (widest, sum(im.height for im in images)), "white")
    y = 0
    for im in images:
        sheet.paste(im, (0, y))
        y += im.height
    if sheet.width != width_px:
        height = round(sheet.height * width_px / sheet.width)
        sheet = sheet.resize((width_px, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # zlib's default level: optimize=True made the file 3 % smaller at five times the cost.
    sheet.save(out, format="PNG")
    return out.getvalue()


_RENDERERS = {"musescore": _musescore_png, "verovio": _verovio_png}
