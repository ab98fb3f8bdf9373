"""The network: Embedding → stacked LSTM → softmax over the next step, and its fast NumPy twin.

Keras trains the model on whole windows at once. Generating with Keras would re-run the network
over the whole history for every new step; :class:`StepModel` instead runs the same weights one
step at a time in NumPy, carrying each layer's (h, c) state, so a step costs the same whatever the
history length and many melodies can be advanced together as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class ModelShape:
    """The hyper-parameters that define the network's layers (not how it was trained)."""

    vocab_size: int
    embedding_dim: int = 64
    units: int = 256
    depth: int = 2
    dropout: float = 0.2


def build_model(shape: ModelShape):
    """The Keras model. Its output is probabilities, so ``predict`` is directly comparable."""
    import keras

    inputs = keras.Input(shape=(None,), dtype="int32", name="steps")
    x = keras.layers.Embedding(shape.vocab_size, shape.embedding_dim, name="embedding")(inputs)
    for layer in range(shape.depth):
        x = keras.layers.LSTM(shape.units, return_sequences=True, name=f"lstm_{layer}")(x)
        x = keras.layers.Dropout(shape.dropout, name=f"dropout_{layer}")(x)
    outputs = keras.layers.Dense(shape.vocab_size, activation="softmax", name="next_step")(x)
    return keras.Model(inputs, outputs, name="melody_lstm")


def save_for_inference(model, shape: ModelShape, path: Path) -> None:
    """Save weights into a fresh, uncompiled model: no optimizer state, a file a third the size."""
    clean = build_model(shape)
    clean.set_weights(model.get_weights())
    clean.save(path)


def load_keras_model(path: Path):
    import keras

    return keras.saving.load_model(path, compile=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: exact to float32 rounding, and never overflows the way 1/(1+exp(-x)) warns about
    return 0.5 * np.tanh(0.5 * x) + 0.5


@dataclass
class LSTMState:
    """Per-layer hidden and cell states for a batch of melodies being generated."""

    h: list[np.ndarray] = field(default_factory=list)
    c: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class _LSTMWeights:
    kernel: np.ndarray  # (inputs, 4 * units), gates in Keras order i, f, c, o
    recurrent: np.ndarray  # (units, 4 * units)
    bias: np.ndarray  # (4 * units,)


class StepModel:
    """The trained network as a single-step NumPy function.

    The first layer's input projection is folded into a table (embedding @ kernel + bias), so a
    step of the first layer is one row lookup plus one recurrent matrix product.
    """

    def __init__(self, embedding: np.ndarray, layers: list[_LSTMWeights], dense_w, dense_b):
        first = layers[0]
        self._input_table = (embedding @ first.kernel + first.bias).astype(np.float32)
        self._layers = layers
        self._dense_w = dense_w.astype(np.float32)
        self._dense_b = dense_b.astype(np.float32)
        self.units = first.recurrent.shape[0]
        self.vocab_size = dense_w.shape[1]

    @classmethod
    def from_keras(cls, model) -> StepModel:
        embedding = model.get_layer("embedding").get_weights()[0]
        layers = []
        index = 0
        while True:
            try:
                lstm = model.get_layer(f"lstm_{index}")
            except ValueError:
                break
            kernel, recurrent, bias = lstm.get_weights()
            layers.append(_LSTMWeights(kernel, recurrent, bias))
            index += 1
        dense_w, dense_b = model.get_layer("next_step").get_weights()
        return cls(embedding, layers, dense_w, dense_b)

    @classmethod
    def load(cls, path: Path) -> StepModel:
        return cls.from_keras(load_keras_model(path))

    def initial_state(self, batch: int) -> LSTMState:
        zeros = [np.zeros((batch, self.units), np.float32) for _ in self._layers]
        return LSTMState(h=list(zeros), c=[z.copy() for z in zeros])

    def step(self, token_ids: np.ndarray, state: LSTMState) -> np.ndarray:
        """Advance every row by one symbol; updates ``state`` in place and returns logits (B, V)."""
        x = None
        for depth, weights in enumerate(self._layers):
            z = state.h[depth] @ weights.recurrent
            if depth == 0:
                z += self._input_table[token_ids]
            else:
                z += x @ weights.kernel
                z += weights.bias
            i, f, g, o = np.split(z, 4, axis=1)
            c = _sigmoid(f) * state.c[depth] + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            state.h[depth], state.c[depth] = h, c
            x = h
        return x @ self._dense_w + self._dense_b


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    e = np.exp(scaled)
    return e / e.sum(axis=-1, keepdims=True)
