"""The network: Embedding → stacked LSTM → softmax over the next step, and its fast NumPy twin.

Beside each step the network reads its form context (:mod:`generator.form`): the (meter, position
in bar) pair, the bars left, the bar's place in a four-bar group, whether the bar so far repeats
the bar one or two back, and the steps one and two bars back (through the same embedding as the
step itself). Each is a small embedding concatenated before the first LSTM.

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

from generator import form

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class ModelShape:
    """The hyper-parameters that define the network's layers (not how it was trained)."""

    vocab_size: int
    embedding_dim: int = 64
    units: int = 256
    depth: int = 2
    dropout: float = 0.2
    # The form context columns the network reads (a subset of form.CONTEXT_COLUMNS, in its order).
    form_inputs: tuple[str, ...] = form.CONTEXT_COLUMNS


# Context columns with their own embedding: (number of values, embedding width).
CONTEXT_EMBEDDINGS = {
    "metric": (form.METRIC_VALUES, 16),
    "remaining": (form.REMAINING_VALUES, 8),
    "group": (form.GROUP_VALUES, 4),
    "repeat": (form.REPEAT_VALUES, 4),
}
LOOKBACK_COLUMNS = ("back_1", "back_2")  # read through the step embedding


def build_model(shape: ModelShape):
    """The Keras model. Its output is probabilities, so ``predict`` is directly comparable.

    Inputs are named ``steps`` and after the form columns it reads (``shape.form_inputs``, in
    :data:`~generator.form.CONTEXT_COLUMNS` order); they are concatenated in that order, which is
    the row order of the first LSTM's kernel.
    """
    import keras

    names = ("steps", *check_form_inputs(shape.form_inputs))
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in names}
    step_embedding = keras.layers.Embedding(shape.vocab_size, shape.embedding_dim, name="embedding")
    parts = []
    for name in names:
        if name == "steps" or name in LOOKBACK_COLUMNS:
            parts.append(step_embedding(inputs[name]))
        else:
            values, width = CONTEXT_EMBEDDINGS[name]
            parts.append(
                keras.layers.Embedding(values, width, name=f"{name}_embedding")(inputs[name])
            )
    x = keras.layers.Concatenate(name="step_and_form")(parts)
    for layer in range(shape.depth):
        x = keras.layers.LSTM(shape.units, return_sequences=True, name=f"lstm_{layer}")(x)
        x = keras.layers.Dropout(shape.dropout, name=f"dropout_{layer}")(x)
    outputs = keras.layers.Dense(shape.vocab_size, activation="softmax", name="next_step")(x)
    return keras.Model(inputs, outputs, name="melody_lstm")


def check_form_inputs(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The form columns named, in :data:`~generator.form.CONTEXT_COLUMNS` order; unknown ones
    are an error that lists the known ones."""
    unknown = [n for n in names if n not in form.CONTEXT_COLUMNS]
    if unknown:
        known = ", ".join(form.CONTEXT_COLUMNS)
        raise ValueError(f"unknown form input {', '.join(unknown)}; known: {known}")
    return tuple(n for n in form.CONTEXT_COLUMNS if n in names)


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

    def __init__(
        self,
        embedding: np.ndarray,
        context_embeddings: dict[str, np.ndarray],
        layers: list[_LSTMWeights],
        dense_w,
        dense_b,
        form_inputs: tuple[str, ...] = form.CONTEXT_COLUMNS,
    ):
        first = layers[0]
        self.units = first.recurrent.shape[0]
        self.depth = len(layers)
        self.vocab_size = dense_w.shape[1]
        # Split the first kernel by input (rows in concatenation order) and fold each input's
        # embedding into it: every input then costs one row lookup per step.
        self.form_inputs = check_form_inputs(form_inputs)
        self._context_columns = np.array(
            [form.CONTEXT_COLUMNS.index(name) for name in self.form_inputs], np.int64
        )
        tables = []
        row = 0
        for name in ("steps", *self.form_inputs):
            table = context_embeddings.get(name, embedding)
            tables.append(table @ first.kernel[row : row + table.shape[1]])
            row += table.shape[1]
        if row != first.kernel.shape[0]:
            raise ValueError("the first LSTM's input size does not match the step and form inputs")
        self._input_table = _sigmoid_gates_first(tables[0] + first.bias)
        # All form tables stacked into one, each column's rows offset, so a step gathers every
        # form input's row with one index and one sum.
        context_tables = [_sigmoid_gates_first(t) for t in tables[1:]]
        sizes = [len(t) for t in context_tables]
        self._context_offsets = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        self._context_table = (
            np.vstack(context_tables)
            if context_tables
            else np.zeros((0, 4 * self.units), np.float32)
        )
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
        form_inputs = tuple(name for name in model.input if name != "steps")
        contexts = {
            name: model.get_layer(f"{name}_embedding").get_weights()[0]
            for name in form_inputs
            if name in CONTEXT_EMBEDDINGS
        }
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
        return cls(embedding, contexts, layers, dense_w, dense_b, form_inputs)

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
            embedding = weights["embedding"][0]
            contexts = {
                name: weights[f"{name}_embedding"][0]
                for name in CONTEXT_EMBEDDINGS
                if f"{name}_embedding" in weights
            }
            form_inputs = (*contexts, *_lookback_inputs(layers[0], embedding, contexts))
            return cls(embedding, contexts, layers, *weights["next_step"], form_inputs)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a melody model this code can read ({error})") from None

    def initial_state(self, batch: int) -> LSTMState:
        return LSTMState(
            h=[np.zeros((batch, self.units), np.float32) for _ in range(self.depth)],
            c=[np.zeros((batch, self.units), np.float32) for _ in range(self.depth)],
        )

    def step(self, token_ids: np.ndarray, context: np.ndarray, state: LSTMState) -> np.ndarray:
        """Advance every row by one symbol with its form context (B, columns); updates ``state``
        in place and returns logits (B, V) for the step the context describes."""
        z = self._input_table[token_ids] + state.h[0] @ self._first_recurrent
        if len(self._context_columns):
            rows = context[:, self._context_columns] + self._context_offsets
            z += self._context_table[rows].sum(axis=1)
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


def _lookback_inputs(
    first: _LSTMWeights, embedding: np.ndarray, contexts: dict[str, np.ndarray]
) -> tuple[str, ...]:
    """The lookback columns a saved model reads: they have no layer of their own (they share the
    step embedding), so their count is what is left of the first LSTM's input rows."""
    spare = first.kernel.shape[0] - embedding.shape[1] - sum(t.shape[1] for t in contexts.values())
    count, odd = divmod(spare, embedding.shape[1])
    if odd or not 0 <= count <= len(LOOKBACK_COLUMNS):
        raise ValueError("the first LSTM's input size does not match the step and form inputs")
    return LOOKBACK_COLUMNS[:count]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    e = np.exp(scaled)
    return e / e.sum(axis=-1, keepdims=True)
