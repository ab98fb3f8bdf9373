"""Training: corpus → windows → Keras fit → ``models/<name>/`` with vocabulary and metadata.

Kept short on purpose (one function, configuration as plain values) so the whole recipe reads in
one sitting. The saved ``meta.json`` records everything needed to trust or reproduce a model.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import keras

from generator import form
from generator.model import (
    MODEL_FILE,
    ModelShape,
    StepModel,
    build_model,
    check_form_inputs,
    save_for_inference,
)
from generator.training import corpus as corpus_mod
from generator.training.dataset import build_index, make_dataset
from generator.training.scoring import score_songs
from generator.vocab import Vocabulary


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out_dir: Path
    window: int = 256
    batch_size: int = 64
    epochs: int = 40
    units: int = 256
    depth: int = 2
    embedding_dim: int = 64
    dropout: float = 0.2
    learning_rate: float = 2e-3
    patience: int = 4
    validation_percent: int = 10
    seed: int = 0
    max_songs: int | None = None  # for quick trials and tests: the first N songs only
    max_minutes: float | None = None  # stop after the epoch that crosses this wall-time budget
    form_inputs: tuple[str, ...] = form.CONTEXT_COLUMNS  # what the network reads beside each step
    verbose: int = 1


class _TimeBudget(keras.callbacks.Callback):
    """Ends training after the epoch that crosses a wall-time budget, keeping the best weights."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if time.time() - self.started > self.seconds:
            self.model.stop_training = True


def _library_versions() -> dict[str, str]:
    import keras
    import music21
    import numpy
    import tensorflow

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "music21": str(music21.__version__),
        "numpy": numpy.__version__,
    }


def train(config: TrainConfig) -> dict:
    """Train a model and save it; returns the metadata written to ``meta.json``."""
    # Windows are bucketed by length, so Keras cannot know an epoch's batch count in advance.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    keras.utils.set_random_seed(config.seed)
    started = time.time()
    corpus = corpus_mod.preprocess(config.data, progress=config.verbose > 0)
    if config.verbose:
        print(corpus.summary())
    songs = corpus.songs[: config.max_songs] if config.max_songs else corpus.songs
    train_songs, valid_songs = corpus_mod.Corpus(songs).split(config.validation_percent)
    if not train_songs or not valid_songs:
        raise ValueError(
            f"need songs on both sides of the split, got {len(train_songs)} training and "
            f"{len(valid_songs)} validation songs; give more data"
        )
    vocab = Vocabulary.from_sequences(s.tokens for s in songs)
    shape = ModelShape(
        vocab_size=len(vocab),
        embedding_dim=config.embedding_dim,
        units=config.units,
        depth=config.depth,
        dropout=config.dropout,
        form_inputs=check_form_inputs(config.form_inputs),
    )
    train_index = build_index(vocab, train_songs, config.window)
    valid_index = build_index(vocab, valid_songs, config.window)
    train_data = make_dataset(
        train_index,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        form_inputs=shape.form_inputs,
    )
    valid_data = make_dataset(
        valid_index, config.batch_size, shuffle=False, form_inputs=shape.form_inputs
    )

    model = build_model(shape)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight"),
        weighted_metrics=["accuracy"],
    )
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        best_path = Path(scratch) / "best.keras"
        callbacks = [
            keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=1, min_lr=5e-5
            ),
        ]
        if config.max_minutes:
            callbacks.append(_TimeBudget(config.max_minutes * 60))
        history = model.fit(
            train_data,
            validation_data=valid_data,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=config.verbose,
            shuffle=False,  # the tf.data pipeline shuffles windows itself
        )
        if best_path.exists():
            model.load_weights(best_path)
    model_path = out_dir / MODEL_FILE
    save_for_inference(model, shape, model_path)
    vocab.save(out_dir / "vocab.json")

    scores = score_songs(StepModel.from_keras(model), vocab, valid_songs)
    epochs_run = len(history.history["loss"])
    meta = {
        "name": out_dir.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {
            "source": str(config.data),
            "hash": corpus.data_hash,
            "songs_kept": len(corpus.songs),
            "songs_used": len(songs),
            "songs_dropped": dict(corpus.dropped),
            "train_songs": len(train_songs),
            "validation_songs": len(valid_songs),
            "train_steps": train_index.target_count,
        },
        "vocabulary": list(vocab.symbols),
        "form": {
            "meters": [m.name for m in form.MODEL_METERS],
            "inputs": list(shape.form_inputs),
            "meters_in_training": dict(sorted(Counter(s.meter for s in train_songs).items())),
            "pickups_in_training": pickups_by_meter(train_songs),
        },
        "hyperparameters": {k: v for k, v in asdict(config).items() if k not in ("data", "out_dir")}
        | {"vocab_size": len(vocab)},
        "validation": scores.as_dict() | {"method": "whole songs, state carried from the start"},
        "history": {k: [round(float(x), 5) for x in v] for k, v in history.history.items()},
        "epochs_run": epochs_run,
        "wall_time_s": round(time.time() - started, 1),
        "versions": _library_versions(),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def pickups_by_meter(songs) -> dict[str, dict[str, int]]:
    """How many songs of each meter have each upbeat length (in steps, as JSON keys): the engine's
    prior when it hears an upbeat in an opening."""
    counts: dict[str, Counter] = {}
    for song in songs:
        counts.setdefault(song.meter, Counter())[str(song.pickup)] += 1
    return {
        meter: dict(sorted(c.items(), key=lambda kv: int(kv[0])))
        for meter, c in sorted(counts.items())
    }
