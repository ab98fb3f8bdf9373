"""The NumPy single-step model must compute what the Keras model computes."""

import numpy as np
import pytest

from generator import form
from generator.form import CONTEXT_COLUMNS
from generator.model import (
    ModelShape,
    StepModel,
    build_model,
    load_keras_model,
    save_for_inference,
    softmax,
)
from tests.conftest import SHIPPED_MODEL


def _random_context(rng: np.random.Generator, vocab_size: int, shape: tuple[int, int]):
    sizes = {
        "metric": form.METRIC_VALUES,
        "remaining": form.REMAINING_VALUES,
        "group": form.GROUP_VALUES,
        "repeat": form.REPEAT_VALUES,
        "back_1": vocab_size,
        "back_2": vocab_size,
    }
    columns = [rng.integers(0, sizes[name], size=shape) for name in form.CONTEXT_COLUMNS]
    return np.stack(columns, axis=-1).astype(np.int32)


def _step_probabilities(step_model, ids: np.ndarray, context: np.ndarray) -> np.ndarray:
    state = step_model.initial_state(ids.shape[0])
    return np.stack(
        [softmax(step_model.step(ids[:, t], context[:, t], state)) for t in range(ids.shape[1])],
        1,
    )


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_fast_step_matches_keras(which, request):
    model_dir = request.getfixturevalue("tiny_model_dir") if which == "tiny" else SHIPPED_MODEL
    engine_fixture = "tiny_engine" if which == "tiny" else "shipped_engine"
    engine = request.getfixturevalue(engine_fixture)
    keras_model = load_keras_model(model_dir / "model.keras")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(engine.vocab), size=(3, 200)).astype(np.int32)
    ids[:, 0] = engine.vocab.delimiter_id
    context = _random_context(rng, len(engine.vocab), ids.shape)
    expected = keras_model.predict(_keras_inputs(ids, context, engine.step_model), verbose=0)
    fast = _step_probabilities(engine.step_model, ids, context)
    assert np.abs(fast - expected).max() < 1e-4


def _keras_inputs(ids: np.ndarray, context: np.ndarray, step_model) -> dict[str, np.ndarray]:
    columns = {name: context[..., i] for i, name in enumerate(form.CONTEXT_COLUMNS)}
    return {"steps": ids} | {name: columns[name] for name in step_model.form_inputs}


@pytest.mark.parametrize(
    "form_inputs",
    [(), ("metric", "remaining"), ("metric", "remaining", "group", "back_1"), CONTEXT_COLUMNS],
)
def test_any_set_of_form_inputs_saves_loads_and_matches_keras(form_inputs, tmp_path):
    """The file alone tells the NumPy twin which form inputs a model reads (no TensorFlow)."""
    shape = ModelShape(vocab_size=20, embedding_dim=8, units=12, form_inputs=form_inputs)
    model = build_model(shape)
    save_for_inference(model, shape, tmp_path / "model.keras")
    step_model = StepModel.load(tmp_path / "model.keras")
    assert step_model.form_inputs == form_inputs
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 20, size=(2, 40)).astype(np.int32)
    context = _random_context(rng, 20, ids.shape)
    expected = model.predict(_keras_inputs(ids, context, step_model), verbose=0)
    assert np.abs(_step_probabilities(step_model, ids, context) - expected).max() < 1e-5


def test_unknown_form_inputs_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="known: metric"):
        build_model(ModelShape(vocab_size=20, form_inputs=("beat",)))


def test_batch_rows_are_independent(tiny_engine):
    ids = np.array([[0, 5, 6, 2, 2], [0, 7, 2, 2, 8]], np.int64)
    context = _random_context(np.random.default_rng(1), len(tiny_engine.vocab), ids.shape)
    together = _step_probabilities(tiny_engine.step_model, ids, context)
    alone = _step_probabilities(tiny_engine.step_model, ids[1:], context[1:])
    assert np.allclose(together[1], alone[0], atol=1e-6)
