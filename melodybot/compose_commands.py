"""Commands that compose with a trained model: ``generate`` and ``info``.

They need only what the bot needs (no TensorFlow); every import that loads NumPy or music21 sits
inside a command, after the root group has set the process up (see melodybot.environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from melodybot.common import model_option

if TYPE_CHECKING:  # both load music21 and NumPy, which wait for a command to run
    from generator.engine import Melody
    from generator.request import MelodyRequest

NOTHING_WRITTEN = (
    "no file written: add -o melody.mid to save the MIDI (or --musicxml, --png, --audio)"
)


@click.command()
@click.argument("request")
@model_option
@click.option(
    "-o",
    "--out",
    "midi_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the MIDI file here.",
)
@click.option(
    "--musicxml",
    "musicxml_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the MusicXML score here.",
)
@click.option(
    "--png",
    "png_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Draw the score into this PNG.",
)
@click.option(
    "--audio",
    "audio_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write an MP3 preview here (needs FluidSynth and a General MIDI soundfont).",
)
@click.option(
    "--renderer",
    type=click.Choice(["auto", "musescore", "verovio"]),
    default="auto",
    show_default=True,
    help="Score renderer for --png.",
)
@click.option(
    "--instrument",
    default=None,
    type=click.IntRange(0, 127),
    help="General MIDI program for --audio (0 piano, 73 flute; default: the request's inst=, "
    "else the piano).",
)
def generate(
    request: str,
    model_dir: Path,
    midi_out: Path | None,
    musicxml_out: Path | None,
    png_out: Path | None,
    audio_out: Path | None,
    renderer: str,
    instrument: int | None,
) -> None:
    """Compose a melody from REQUEST and write the files asked for.

    REQUEST is opening notes and options, e.g. "C4 D4 E4 temp=0.7 bars=8 seed=1".
    Notes: C4, F#4, Bb3, 60, r (rest), with an optional length in quarter notes (D4:2).
    Options: temp= bars= steps= key= bpm= meter= pickup= seed= topk= topp=.

    Without -o (or --musicxml, --png, --audio) no file is written: the steps are only printed.
    """
    from generator.engine import MelodyEngine
    from generator.request import MelodyRequest, RequestError

    try:
        parsed = MelodyRequest.parse(request)
        engine = MelodyEngine.load(model_dir)
        melody = engine.compose(parsed)
    except (RequestError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    if midi_out:
        _write(midi_out, melody.to_midi())
    if musicxml_out:
        _write(musicxml_out, melody.to_musicxml(title=parsed.describe()))
    if png_out or audio_out:
        from generator.render import RenderError, RenderSettings, render_audio, render_png

        program = instrument if instrument is not None else parsed.instrument or 0
        settings = RenderSettings(renderer=renderer, gm_program=program)  # type: ignore[arg-type]
        try:
            if png_out:
                _write(png_out, render_png(melody.to_musicxml(parsed.describe()), settings))
            if audio_out:
                _write(audio_out, render_audio(melody.performance(), settings))
        except RenderError as error:
            raise click.ClickException(str(error)) from None
    click.echo(" ".join(melody.tokens))
    click.echo(
        f"key {melody.key_label}, {melody.bars:g} bars of {parsed.meter}"
        + (f" after {_upbeat_words(melody.pickup)} upbeat" if melody.pickup else "")
        + f", {melody.ending}; "
        f"redo with: {_redo(parsed, melody).describe()}",
        err=True,
    )
    if not (midi_out or musicxml_out or png_out or audio_out):
        click.echo(NOTHING_WRITTEN, err=True)


@click.command()
@model_option
def info(model_dir: Path) -> None:
    """Show how a model was trained and how well it scores."""
    meta_path = model_dir / "meta.json"
    if not meta_path.exists():
        raise click.ClickException(f"no model metadata at {meta_path}")
    meta = json.loads(meta_path.read_text())
    v, data, hp = meta["validation"], meta["data"], meta["hyperparameters"]
    click.echo(f"model      {meta['name']} (created {meta['created']})")
    click.echo(
        f"data       {data['source']} · {data['songs_used']} songs · hash {data['hash'][:16]}…"
    )
    click.echo(
        f"network    {hp['depth']}×LSTM({hp['units']}), embedding {hp['embedding_dim']}, "
        f"vocabulary {hp['vocab_size']}"
    )
    form_meta = meta.get("form", {})
    inputs = ", ".join(form_meta.get("inputs", [])) or "none (the step alone)"
    meters = ", ".join(f"{m} ({n})" for m, n in form_meta.get("meters_in_training", {}).items())
    click.echo(f"form       reads {inputs}" + (f"; songs per meter {meters}" if meters else ""))
    click.echo(
        f"validation {v['nll_bits_per_step']:.3f} bits/step · accuracy {v['accuracy']:.3f}"
        f" · non-hold accuracy {v['non_hold_accuracy']:.3f} ({v['songs']} songs)"
    )
    click.echo(f"trained    {meta['epochs_run']} epochs in {meta['wall_time_s'] / 60:.1f} min")


_NOTE_VALUES = {1: "a 16th-note", 2: "an eighth-note", 3: "a dotted-eighth", 4: "a quarter-note"}
_NOTE_VALUES |= {6: "a dotted-quarter", 8: "a half-note", 12: "a dotted-half"}


def _upbeat_words(steps: int) -> str:
    """An upbeat's length as musicians say it: "an eighth-note", else in beats."""
    return _NOTE_VALUES.get(steps, f"a {steps / 4:g}-beat")


def _redo(request: MelodyRequest, melody: Melody) -> MelodyRequest:
    """The request that gives this melody again: its random seed, and the upbeat it heard."""
    heard = {"pickup": melody.pickup} if request.pickup is None and melody.pickup else {}
    return request.with_options(rng_seed=melody.rng_seed, **heard)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    click.echo(f"wrote {path}", err=True)
