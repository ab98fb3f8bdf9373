"""The ``melodybot`` command line: prepare data, train, evaluate, compose, inspect a model."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from generator.paths import default_model_dir

DEFAULT_DATA = "../shared/data/esac/deutschl"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides our output


def _quiet_music21() -> None:
    from generator.training.corpus import quiet_music21

    quiet_music21()


model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=default_model_dir,
    show_default="models/esac-lstm or $MELODYBOT_MODEL_DIR",
    help="Model folder (model.keras, vocab.json, meta.json).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """melodybot: compose folk-style melodies with an LSTM trained on the Essen collection."""


@main.command()
@click.option(
    "--data",
    default=DEFAULT_DATA,
    show_default=True,
    help="Folder of .krn/.abc/.mxl/.mid songs, or 'essen' for music21's bundled collection.",
)
@click.option("--workers", type=int, default=None, help="Parallel parsers (default: all cores).")
def prepare(data: str, workers: int | None) -> None:
    """Parse, filter, transpose and encode the songs; cache the result for `train`."""
    from generator.training.corpus import preprocess

    _quiet_music21()
    corpus = _or_fail(lambda: preprocess(data, workers=workers))
    click.echo(corpus.summary())
    click.echo(f"data hash {corpus.data_hash[:16]}…  (cached; `train` will not re-parse)")


@main.command()
@click.option("--data", default=DEFAULT_DATA, show_default=True, help="Training songs.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("models/trained"),
    show_default=True,
    help="Where to write model.keras, vocab.json and meta.json (a new folder: the shipped "
    "model is never overwritten by default).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace a model already in --out (e.g. the shipped one)."
)
@click.option("--units", default=256, show_default=True, help="LSTM width.")
@click.option("--depth", default=2, show_default=True, help="Number of stacked LSTM layers.")
@click.option("--embedding", "embedding_dim", default=64, show_default=True, help="Input size.")
@click.option("--dropout", default=0.2, show_default=True, help="Dropout after each LSTM.")
@click.option("--window", default=256, show_default=True, help="Training window in steps.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--epochs", default=40, show_default=True, help="Most epochs (early stopping).")
@click.option("--lr", "learning_rate", default=2e-3, show_default=True, help="Adam learning rate.")
@click.option("--patience", default=4, show_default=True, help="Epochs without improvement.")
@click.option("--max-minutes", type=float, default=None, help="Wall-time budget for training.")
@click.option("--max-songs", type=int, default=None, help="Use only the first N songs (trials).")
@click.option("--seed", default=0, show_default=True, help="Random seed for weights and order.")
@click.option(
    "--form-inputs",
    default="all",
    show_default=True,
    help="Form context read beside each step, comma-separated from metric, remaining, group, "
    "repeat, back_1, back_2; 'all', or 'none' for the step alone.",
)
def train(out_dir: Path, form_inputs: str, overwrite: bool, **options) -> None:
    """Train a model on a folder of songs and save it with its vocabulary and metadata."""
    from generator.model import MODEL_FILE, check_form_inputs

    if (out_dir / MODEL_FILE).exists() and not overwrite:
        raise click.ClickException(
            f"{out_dir} already holds a model; choose another --out, or add --overwrite to "
            "replace it (hours of training are not undone)."
        )
    from generator.training.train import TrainConfig
    from generator.training.train import train as run_training

    _quiet_music21()
    from generator.form import CONTEXT_COLUMNS

    wanted = form_inputs.strip()
    names = {"none": [], "all": list(CONTEXT_COLUMNS)}.get(wanted)
    if names is None:
        names = [n.strip() for n in wanted.split(",")]
    columns = _or_fail(lambda: check_form_inputs(names))
    config = TrainConfig(out_dir=out_dir, verbose=1, form_inputs=columns, **options)
    meta = _or_fail(lambda: run_training(config))
    v = meta["validation"]
    click.echo(
        f"saved {out_dir}: validation {v['nll_bits_per_step']:.3f} bits/step, "
        f"accuracy {v['accuracy']:.3f}, non-hold accuracy {v['non_hold_accuracy']:.3f}"
    )


@main.command()
@click.option("--data", required=True, help="Folder of songs to score (or 'essen').")
@model_option
@click.option(
    "--validation-only/--all-songs",
    default=False,
    show_default=True,
    help="Score only the songs the model's training split held out.",
)
@click.option(
    "--ngram-order",
    default=5,
    show_default=True,
    help="Order of the Kneser-Ney n-gram scored beside the model (0: none).",
)
def evaluate(data: str, model_dir: Path, validation_only: bool, ngram_order: int) -> None:
    """Score a model on whole songs (state carried from each song's start).

    Prints a table to stderr and one JSON line to stdout: bits and nats per 16th step,
    accuracy, non-hold accuracy, bits per note event and pitch bits per onset, for the model
    and for an n-gram fitted on the training split of the same data.
    """
    from generator.engine import MelodyEngine
    from generator.training.corpus import is_validation, preprocess
    from generator.training.ngram import KneserNey
    from generator.training.scoring import score_songs

    _quiet_music21()
    engine = _or_fail(lambda: MelodyEngine.load(model_dir))
    corpus = _or_fail(lambda: preprocess(data, progress=sys.stderr.isatty()))
    percent = engine.meta.get("hyperparameters", {}).get("validation_percent", 10)
    held_out = [s for s in corpus.songs if is_validation(s.song_id, percent)]
    songs = held_out if validation_only else corpus.songs
    result: dict[str, object] = {"model": engine.name, "data": data, "songs_scored": len(songs)}
    result["lstm"] = score_songs(engine.step_model, engine.vocab, songs).as_dict()
    if ngram_order:
        training = [s for s in corpus.songs if not is_validation(s.song_id, percent)]
        ngram = KneserNey(engine.vocab, ngram_order).fit(training)
        result[f"ngram{ngram_order}"] = ngram.score(songs).as_dict()
    _evaluation_table(result)
    click.echo(json.dumps(result))


def _evaluation_table(result: dict) -> None:
    rows = [
        (
            "",
            "bits/step",
            "nats/step",
            "accuracy",
            "non-hold acc.",
            "bits/event",
            "pitch bits/onset",
        )
    ]
    for name in [k for k in result if k == "lstm" or k.startswith("ngram")]:
        s = result[name]
        rows.append(
            (
                name,
                f"{s['nll_bits_per_step']:.3f}",
                f"{s['nll_nats_per_step']:.3f}",
                f"{s['accuracy']:.3f}",
                f"{s['non_hold_accuracy']:.3f}",
                f"{s['bits_per_event']:.2f}",
                f"{s['pitch_bits_per_onset']:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)), err=True)


@main.command()
@model_option
@click.option(
    "--data",
    default=DEFAULT_DATA,
    show_default=True,
    help="The songs the model was trained on (seeds come from its held-out songs).",
)
@click.option("--n", "count", default=200, show_default=True, help="Melodies per temperature.")
@click.option(
    "--temp",
    "temperatures",
    default="0.7,1.0",
    show_default=True,
    help="Comma-separated temperatures to compare.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder for index.md, report.json and the plots.",
)
@click.option("--seed", default=0, show_default=True, help="Random seed: same seed, same report.")
@click.option(
    "--reference",
    default=None,
    help="Compare with this folder of songs instead of the held-out songs (seeds stay held-out).",
)
@click.option(
    "--listen",
    default=12,
    show_default=True,
    help="Melodies on the listening page (listen.html), each beside its real song; 0: none.",
)
def report(
    model_dir: Path,
    data: str,
    count: int,
    temperatures: str,
    out_dir: Path,
    seed: int,
    reference: str | None,
    listen: int,
) -> None:
    """Generate melodies from held-out seeds and compare them with real folk songs.

    Writes index.md (feature overlaps, form figures per meter, length and meter sweeps),
    report.json, one plot per feature and a listening page into --out.
    """
    from generator.engine import MelodyEngine
    from generator.training.corpus import preprocess
    from generator.training.report.build import build_report

    _quiet_music21()
    try:
        temps = [float(t) for t in temperatures.split(",") if t.strip()]
    except ValueError:
        raise click.ClickException(
            f"--temp takes numbers like 0.7,1.0, not {temperatures}"
        ) from None
    if not temps or any(not 0 < t <= 2 for t in temps):
        raise click.ClickException("temperatures must lie in (0, 2]")
    engine = _or_fail(lambda: MelodyEngine.load(model_dir))
    corpus = _or_fail(lambda: preprocess(data, progress=sys.stderr.isatty()))
    compared = None
    if reference:
        compared = _or_fail(lambda: preprocess(reference, progress=sys.stderr.isatty())).songs
    results = _or_fail(
        lambda: build_report(
            engine,
            corpus,
            n=count,
            temperatures=temps,
            out_dir=out_dir,
            seed=seed,
            reference=compared,
            listen=listen,
            progress=sys.stderr.isatty(),
        )
    )
    click.echo((out_dir / "index.md").read_text())
    click.echo(
        f"wrote {out_dir}/index.md, report.json and {len(list(out_dir.glob('*.png')))} plots",
        err=True,
    )
    del results


@main.command()
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
    help="Write an MP3 preview here (needs FluidSynth and ffmpeg).",
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
    default=0,
    show_default=True,
    type=click.IntRange(0, 127),
    help="General MIDI program for --audio (0 piano, 73 flute).",
)
def generate(
    request: str,
    model_dir: Path,
    midi_out: Path | None,
    musicxml_out: Path | None,
    png_out: Path | None,
    audio_out: Path | None,
    renderer: str,
    instrument: int,
) -> None:
    """Compose a melody from REQUEST, e.g. "C4 D4 E4 temp=0.7 bars=8 seed=1".

    Notes: C4, F#4, Bb3, 60, r (rest), with an optional length in quarter notes (D4:2).
    Options: temp= bars= steps= key= bpm= meter= pickup= seed= topk= topp=.
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

        settings = RenderSettings(renderer=renderer, gm_program=instrument)  # type: ignore[arg-type]
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


@main.command()
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


def _redo(request, melody):
    """The request that gives this melody again: its random seed, and the upbeat it heard."""
    heard = {"pickup": melody.pickup} if request.pickup is None and melody.pickup else {}
    return request.with_options(rng_seed=melody.rng_seed, **heard)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    click.echo(f"wrote {path}", err=True)


def _or_fail(action):
    try:
        return action()
    except (FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
