"""The network: Embedding → stacked LSTM → softmax over the next step, and its fast NumPy twin.

Keras trains the model on whole windows at once. Generating with Keras would re-run the network
over the whole history for every new step; :class:`StepModel` instead runs the same weights one
step at a time in NumPy, carrying each layer's (h, c) state, so a step costs the same whatever the
history length and many melodies can be advanced together as one batch.
"""

from __future__ import annotations

import io
import zipfile
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


def read_keras_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Layer name → weight arrays, from the HDF5 file inside a Keras 3 ``.keras`` zip."""
    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as stored:
        data = io.BytesIO(stored.read())
    weights: dict[str, list[np.ndarray]] = {}
    with h5py.File(data, "r") as h5:
        for group in h5["layers"].values():
            variables = group["cell"]["vars"] if "cell" in group else group["vars"]
            name = group["vars"].attrs["name"]
            weights[str(name)] = [np.array(variables[str(i)]) for i in range(len(variables))]
    return weights


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


def _sigmoid_gates_first(matrix: np.ndarray) -> np.ndarray:
    """Reorder gate columns from Keras' (i, f, c, o) to (i, f, o, c): one sigmoid covers three."""
    i, f, c, o = np.split(matrix, 4, axis=-1)
    return np.concatenate([i, f, o, c], axis=-1).astype(np.float32)


class StepModel:
    """The trained network as a single-step NumPy function.

    Per step and layer this is one matrix product: the first layer's input projection is folded
    into a table (embedding @ kernel + bias), deeper layers multiply ``[x, h]`` by the stacked
    kernels, and the gate columns are reordered so one sigmoid call covers the i, f and o gates.
    """

    def __init__(self, embedding: np.ndarray, layers: list[_LSTMWeights], dense_w, dense_b):
        first = layers[0]
        self.units = first.recurrent.shape[0]
        self.depth = len(layers)
        self.vocab_size = dense_w.shape[1]
        self._input_table = _sigmoid_gates_first(embedding @ first.kernel + first.bias)
        self._first_recurrent = _sigmoid_gates_first(first.recurrent)
        self._stacked = [
            _sigmoid_gates_first(np.vstack([layer.kernel, layer.recurrent])) for layer in layers[1:]
        ]
        self._stacked_bias = [_sigmoid_gates_first(layer.bias) for layer in layers[1:]]
        self._dense_w = dense_w.astype(np.float32)
        self._dense_b = dense_b.astype(np.float32)

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
        """Read the weights straight from the ``.keras`` file, without starting TensorFlow.

        Composing needs only NumPy, so the bot skips TensorFlow's seconds of start-up and
        hundreds of MB of memory. The test suite checks this path against ``keras`` loading.
        """
        weights = read_keras_weights(Path(path))
        try:
            layers = []
            while f"lstm_{len(layers)}" in weights:
                layers.append(_LSTMWeights(*weights[f"lstm_{len(layers)}"]))
            return cls(weights["embedding"][0], layers, *weights["next_step"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a melody model this code can read ({error})") from None

    def initial_state(self, batch: int) -> LSTMState:
        return LSTMState(
            h=[np.zeros((batch, self.units), np.float32) for _ in range(self.depth)],
            c=[np.zeros((batch, self.units), np.float32) for _ in range(self.depth)],
        )

    def step(self, token_ids: np.ndarray, state: LSTMState) -> np.ndarray:
        """Advance every row by one symbol; updates ``state`` in place and returns logits (B, V)."""
        z = self._input_table[token_ids] + state.h[0] @ self._first_recurrent
        x = self._cell(z, state, 0)
        for depth in range(1, self.depth):
            joined = np.concatenate([x, state.h[depth]], axis=1)
            z = joined @ self._stacked[depth - 1] + self._stacked_bias[depth - 1]
            x = self._cell(z, state, depth)
        return x @ self._dense_w + self._dense_b

    def _cell(self, z: np.ndarray, state: LSTMState, depth: int) -> np.ndarray:
        units = self.units
        gates = _sigmoid(z[:, : 3 * units])
        c = gates[:, units : 2 * units] * state.c[depth] + gates[:, :units] * np.tanh(
            z[:, 3 * units :]
        )
        h = gates[:, 2 * units :] * np.tanh(c)
        state.h[depth], state.c[depth] = h, c
        return h


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    e = np.exp(scaled)
    return e / e.sum(axis=-1, keepdims=True)
