"""The listening page: generated melodies beside real ones, as scores to read and audio to hear.

Numbers say whether melodies have the right form; a person needs to look and listen to say
whether they are music. Each melody is rendered by the bot's own renderers (score PNG, audio
preview) into ``listen/`` beside the page, which is plain HTML that any browser opens from disk.
A melody whose picture or audio cannot be made keeps its place with a note saying why.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from generator.render import AUDIO_MIME, AUDIO_SUFFIX, RenderError, render_audio, render_png

PAGE_NAME = "listen.html"
ASSET_DIR = "listen"


@dataclass(frozen=True)
class ListeningItem:
    """One melody on the page: a caption, whether it is generated or real, and its files."""

    caption: str
    kind: str  # "generated" or "real"
    musicxml: bytes
    midi: bytes


def write_listening_page(
    out_dir: Path, items: Sequence[ListeningItem], *, title: str, progress: bool = False
) -> Path:
    """Render every item and write the page; items are shown in pairs, two to a row."""
    assets = out_dir / ASSET_DIR
    assets.mkdir(parents=True, exist_ok=True)
    cards = [
        _card(assets, index, item)
        for index, item in enumerate(tqdm(items, desc="listening page", disable=not progress))
    ]
    rows = [
        '<div class="row">' + "".join(cards[i : i + 2]) + "</div>" for i in range(0, len(cards), 2)
    ]
    page = out_dir / PAGE_NAME
    page.write_text(_PAGE.format(title=html.escape(title), rows="\n".join(rows)), encoding="utf-8")
    return page


def _card(assets: Path, index: int, item: ListeningItem) -> str:
    stem = f"{index:02d}-{item.kind}"
    (assets / f"{stem}.mid").write_bytes(item.midi)
    (assets / f"{stem}.musicxml").write_bytes(item.musicxml)
    parts = [f'<h2><span class="{item.kind}">{item.kind}</span> {html.escape(item.caption)}</h2>']
    try:
        (assets / f"{stem}.png").write_bytes(render_png(item.musicxml))
        parts.append(f'<img src="{ASSET_DIR}/{stem}.png" alt="score of {html.escape(stem)}">')
    except RenderError as error:
        parts.append(f'<p class="missing">No score picture: {html.escape(str(error))}</p>')
    try:
        audio_name = f"{stem}{AUDIO_SUFFIX}"
        (assets / audio_name).write_bytes(render_audio(item.midi))
        parts.append(
            f'<audio controls preload="metadata" src="{ASSET_DIR}/{audio_name}" '
            f'type="{AUDIO_MIME}"></audio>'
        )
    except RenderError as error:
        parts.append(f'<p class="missing">No audio: {html.escape(str(error))}</p>')
    parts.append(
        f'<p class="files"><a href="{ASSET_DIR}/{stem}.mid">MIDI</a> · '
        f'<a href="{ASSET_DIR}/{stem}.musicxml">MusicXML</a></p>'
    )
    return '<section class="melody">' + "".join(parts) + "</section>"


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1400px; padding: 0 1rem;
       color: #222; }}
.row {{ display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem; margin-bottom: 2rem; }}
.melody {{ border: 1px solid #ddd; border-radius: 8px; padding: 0.75rem; }}
.melody h2 {{ font-size: 1rem; margin: 0 0 0.5rem; }}
.melody img {{ width: 100%; height: auto; display: block; }}
.melody audio {{ width: 100%; margin-top: 0.5rem; }}
.generated, .real {{ font-size: 0.8rem; padding: 0.1rem 0.4rem; border-radius: 4px; }}
.generated {{ background: #e3efff; }}
.real {{ background: #e6f6e6; }}
.missing {{ color: #a33; }}
.files {{ font-size: 0.85rem; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Each row: a melody the model composed (left) from the first bar of a held-out song, and that
song as it is (right), in the same meter and key.</p>
{rows}
</body>
</html>
"""
