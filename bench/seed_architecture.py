"""The seed method's network, trained the seed method's way, for a side-by-side comparison.

One-hot input, LSTM(256) → Dropout(0.2) → Dense softmax, overlapping 64-step windows over the
songs joined by 64 delimiters, predicting only the step after each window, Adam 1e-3. Windows are
streamed (not materialised) so the comparison is about the method's accuracy, not its memory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from generator.model import StepModel, _LSTMWeights
from generator.training.corpus import Song
from generator.training.scoring import known_songs
from generator.vocab import Vocabulary

WINDOW = 64


def joined_series(vocab: Vocabulary, songs: Sequence[Song]) -> np.ndarray:
    pieces = []
    for song in known_songs(vocab, songs)[0]:
        pieces.append(np.full(WINDOW, vocab.delimiter_id, np.int32))
        pieces.append(vocab.encode(song.tokens))
    pieces.append(np.full(WINDOW, vocab.delimiter_id, np.int32))
    return np.concatenate(pieces)


def build(vocab_size: int):
    import keras

    inputs = keras.Input(shape=(None, vocab_size), name="one_hot")
    x = keras.layers.LSTM(256, name="lstm_0")(inputs)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(vocab_size, activation="softmax", name="next_step")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train(vocab: Vocabulary, songs: Sequence[Song], minutes: float, out: Path) -> dict:
    """Train until the wall-time budget is spent (checked after every 200 batches)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    series = tf.constant(joined_series(vocab, songs))
    count = int(series.shape[0]) - WINDOW
    size = len(vocab)
    data = (
        tf.data.Dataset.range(count)
        .shuffle(count, seed=0, reshuffle_each_iteration=True)
        .map(lambda i: (tf.one_hot(series[i : i + WINDOW], size), series[i + WINDOW]))
        .batch(64)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = build(size)
    started = time.time()
    batches_per_chunk = 200

    class Budget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if time.time() - started > minutes * 60:
                self.model.stop_training = True

    history = model.fit(
        data.repeat(),
        steps_per_epoch=batches_per_chunk,
        epochs=10_000,
        callbacks=[Budget()],
        verbose=2,
    )
    seen = len(history.history["loss"]) * batches_per_chunk * 64
    model.save(out)
    return {
        "windows_seen": seen,
        "epochs_equivalent": seen / count,
        "minutes": (time.time() - started) / 60,
    }


def as_step_model(model, vocab_size: int) -> StepModel:
    """One-hot input is an identity embedding, so the stateful twin works unchanged."""
    kernel, recurrent, bias = model.get_layer("lstm_0").get_weights()
    dense_w, dense_b = model.get_layer("next_step").get_weights()
    identity = np.eye(vocab_size, dtype=np.float32)
    return StepModel(identity, [_LSTMWeights(kernel, recurrent, bias)], dense_w, dense_b)


def score_windowed(step_model: StepModel, vocab: Vocabulary, songs: Sequence[Song]) -> dict:
    """Score every step from exactly the 64 steps before it, as the seed method predicts."""
    import math

    from generator.model import softmax

    nll = 0.0
    steps = correct = events = event_correct = 0
    hold = vocab.hold_id
    contexts: list[np.ndarray] = []
    targets: list[int] = []
    for song in known_songs(vocab, songs)[0]:
        padded = np.concatenate(
            [
                np.full(WINDOW, vocab.delimiter_id, np.int32),
                vocab.encode(song.tokens),
                [vocab.delimiter_id],
            ]
        )
        for t in range(WINDOW, len(padded)):
            contexts.append(padded[t - WINDOW : t])
            targets.append(int(padded[t]))
    all_contexts = np.stack(contexts)
    all_targets = np.array(targets)
    for begin in range(0, len(all_targets), 4096):
        ids = all_contexts[begin : begin + 4096]
        target = all_targets[begin : begin + 4096]
        state = step_model.initial_state(len(ids))
        for t in range(WINDOW):
            logits = step_model.step(ids[:, t], state)
        probs = softmax(logits)
        nll -= float(np.log(np.maximum(probs[np.arange(len(target)), target], 1e-12)).sum())
        hits = probs.argmax(1) == target
        steps += len(target)
        correct += int(hits.sum())
        events += int((target != hold).sum())
        event_correct += int((hits & (target != hold)).sum())
    nats = nll / steps
    return {
        "nll_bits_per_step": nats / math.log(2),
        "nll_nats_per_step": nats,
        "accuracy": correct / steps,
        "non_hold_accuracy": event_correct / events,
        "steps": steps,
    }
