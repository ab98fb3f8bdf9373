"""Score PNGs: MuseScore first, verovio as the fallback, one trimmed white image either way."""

from __future__ import annotations

import io
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from generator.render import tools
from generator.render.errors import RenderError
from generator.render.settings import RenderSettings

MUSESCORE_NAMES = ("mscore3", "musescore3", "mscore", "musescore")
MUSESCORE_DPI = 190  # an A4 page at 190 dpi is ~1,570 px wide; trimmed, about 1,400
MARGIN_PX = 24

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
    prepared = prepare_musicxml(musicxml)
    available = available_png_renderers()
    wanted = ["musescore", "verovio"] if settings.renderer == "auto" else [settings.renderer]
    usable = [name for name in wanted if name in available]
    if not usable:
        raise RenderError(f"no score renderer is installed (wanted {', '.join(wanted)}).")
    for renderer in usable[:-1]:  # in "auto", a failing MuseScore falls back to verovio
        try:
            return _RENDERERS[renderer](prepared, settings)
        except RenderError as error:
            tools.log.warning("%s; drawing the score with %s instead", error, usable[-1])
    return _RENDERERS[usable[-1]](prepared, settings)


def _musescore_png(musicxml: bytes, settings: RenderSettings) -> bytes:
    executable = tools.find(*MUSESCORE_NAMES)
    with tempfile.TemporaryDirectory(
        prefix="melodybot-mscore-", dir=settings.scratch_dir
    ) as scratch:
        folder = Path(scratch)
        (folder / "score.musicxml").write_bytes(musicxml)
        tools.run(
            [
                executable,
                "-r",
                str(MUSESCORE_DPI),
                "-T",
                str(MARGIN_PX),
                "-o",
                "score.png",
                "score.musicxml",
            ],
            timeout_s=settings.timeout_s,
            what="MuseScore",
            cwd=folder,
        )
        pages = sorted(folder.glob("score*.png"), key=_page_number)
        if not pages:
            raise RenderError("MuseScore wrote no picture.")
        return _stack_pages([p.read_bytes() for p in pages], settings.width_px)


def _page_number(path: Path) -> int:
    match = re.search(r"-(\d+)\.png$", path.name)
    return int(match[1]) if match else 0


def _verovio_png(musicxml: bytes, settings: RenderSettings) -> bytes:
    import cairosvg
    import verovio

    toolkit = verovio.toolkit()
    toolkit.setOptions(
        {
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
    )
    if not toolkit.loadData(musicxml.decode("utf-8")):
        raise RenderError("verovio could not read the score.")
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
