"""The NumPy single-step model must compute what the Keras model computes."""

import numpy as np
import pytest

from generator.model import load_keras_model, softmax
from tests.conftest import SHIPPED_MODEL


def _step_probabilities(step_model, ids: np.ndarray) -> np.ndarray:
    state = step_model.initial_state(ids.shape[0])
    return np.stack([softmax(step_model.step(ids[:, t], state)) for t in range(ids.shape[1])], 1)


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_fast_step_matches_keras(which, request):
    model_dir = request.getfixturevalue("tiny_model_dir") if which == "tiny" else SHIPPED_MODEL
    engine_fixture = "tiny_engine" if which == "tiny" else "shipped_engine"
    engine = request.getfixturevalue(engine_fixture)
    keras_model = load_keras_model(model_dir / "model.keras")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(engine.vocab), size=(3, 200)).astype(np.int32)
    ids[:, 0] = engine.vocab.delimiter_id
    expected = keras_model.predict(ids, verbose=0)
    fast = _step_probabilities(engine.step_model, ids)
    assert np.abs(fast - expected).max() < 1e-4


def test_batch_rows_are_independent(tiny_engine):
    ids = np.array([[0, 5, 6, 2, 2], [0, 7, 2, 2, 8]], np.int64)
    together = _step_probabilities(tiny_engine.step_model, ids)
    alone = _step_probabilities(tiny_engine.step_model, ids[1:])
    assert np.allclose(together[1], alone[0], atol=1e-6)
