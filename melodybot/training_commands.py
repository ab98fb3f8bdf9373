"""Commands that make and measure models: ``prepare``, ``train``, ``evaluate`` and ``report``.

They import generator.training only once they run: the bot's image and `make run`'s venv have no
TensorFlow (the `train` extra), and ``melodybot --help`` there must still work. Run there, they
say which extra to install instead of ending in an import traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from melodybot.common import model_option, or_fail

DEFAULT_DATA = "../shared/data/esac/deutschl"

# The top-level modules of the `train` extra's distributions (pyproject.toml; a test keeps the
# two alike). Only a missing one of these is the "install the extra" mistake; any other missing
# module is a broken install and keeps its traceback.
TRAINING_MODULES = frozenset({"tensorflow", "keras", "tqdm", "matplotlib"})


class TrainingCommand(click.Command):
    """A command that needs the `train` extra: without it, a message that says how to install it
    (the bot's own install leaves it out, so this is what a light install meets first)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as error:
            missing = (error.name or "").partition(".")[0]
            if missing not in TRAINING_MODULES:
                raise
            raise click.ClickException(
                f"`melodybot {ctx.info_name}` needs the training tools, and {missing} is not "
                "installed. In a checkout: `make dev` (or `.venv/bin/pip install -e '.[train]'`); "
                "elsewhere: `pip install 'melodybot[train]'`."
            ) from None


def _quiet_music21() -> None:
    from generator.training.corpus import quiet_music21

    quiet_music21()


@click.command(cls=TrainingCommand)
@click.option(
    "--data",
    default=DEFAULT_DATA,
    show_default=True,
    help="Folder of .krn/.abc/.mxl/.mid songs, or 'essen' for music21's bundled collection.",
)
@click.option("--workers", type=int, default=None, help="Parallel parsers (default: all cores).")
def prepare(data: str, workers: int | None) -> None:
    """Parse and encode a folder of songs into the cache `train` reads.

    Songs are parsed, filtered, transposed to C major or A minor and encoded once; `train`,
    `evaluate` and `report` then read the cache instead of parsing again.
    """
    from generator.training.corpus import preprocess

    _quiet_music21()
    corpus = or_fail(lambda: preprocess(data, workers=workers))
    click.echo(corpus.summary())
    click.echo(f"data hash {corpus.data_hash[:16]}…  (cached; `train` will not re-parse)")


@click.command(cls=TrainingCommand)
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
def train(out_dir: Path, form_inputs: str, overwrite: bool, **options: Any) -> None:
    """Train a model on a folder of songs and save it with its metadata.

    Writes model.keras, vocab.json and meta.json (how it was trained and how well it scores)
    into --out.
    """
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
    columns = or_fail(lambda: check_form_inputs(names))
    config = TrainConfig(out_dir=out_dir, verbose=1, form_inputs=columns, **options)
    meta = or_fail(lambda: run_training(config))
    v = meta["validation"]
    click.echo(
        f"saved {out_dir}: validation {v['nll_bits_per_step']:.3f} bits/step, "
        f"accuracy {v['accuracy']:.3f}, non-hold accuracy {v['non_hold_accuracy']:.3f}"
    )


@click.command(cls=TrainingCommand)
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
    """Score a model on whole songs, beside an n-gram baseline.

    The model's state is carried from each song's start. Prints a table to stderr and one JSON
    line to stdout: bits and nats per 16th step, accuracy, non-hold accuracy, bits per note
    event and pitch bits per onset, for the model and for an n-gram fitted on the training
    split of the same data.
    """
    from generator.engine import MelodyEngine
    from generator.training.corpus import is_validation, preprocess
    from generator.training.ngram import KneserNey
    from generator.training.scoring import score_songs

    _quiet_music21()
    engine = or_fail(lambda: MelodyEngine.load(model_dir))
    corpus = or_fail(lambda: preprocess(data, progress=sys.stderr.isatty()))
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


@click.command(cls=TrainingCommand)
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
    """Compare melodies from held-out seeds with real folk songs.

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
    engine = or_fail(lambda: MelodyEngine.load(model_dir))
    corpus = or_fail(lambda: preprocess(data, progress=sys.stderr.isatty()))
    compared = None
    if reference:
        compared = or_fail(lambda: preprocess(reference, progress=sys.stderr.isatty())).songs
    or_fail(
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
