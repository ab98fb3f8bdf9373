import itertools
import json
import math

import keras
import pytest

from generator.engine import MelodyEngine
from generator.request import MelodyRequest
from generator.training.corpus import preprocess
from generator.training.scoring import score_songs
from generator.vocab import Vocabulary


def test_tiny_training_writes_a_loadable_model(tiny_model_dir, few_songs_dir):
    assert {p.name for p in tiny_model_dir.iterdir()} >= {"model.keras", "vocab.json", "meta.json"}
    meta = json.loads((tiny_model_dir / "meta.json").read_text())
    validation = meta["validation"]
    assert validation["songs"] > 0 and validation["steps"] > 0
    assert validation["nll_bits_per_step"] > 0
    assert abs(validation["nll_bits_per_step"] - validation["nll_nats_per_step"] / 0.693147) < 1e-3
    assert 0 <= validation["non_hold_accuracy"] <= 1 and 0 < validation["accuracy"] <= 1
    assert meta["data"]["hash"] and meta["versions"]["tensorflow"]
    assert meta["vocabulary"] == list(Vocabulary.load(tiny_model_dir / "vocab.json").symbols)
    # the scores are the saved model's own, on exactly the songs the split held out
    train_songs, held_out = preprocess(few_songs_dir).split(
        meta["hyperparameters"]["validation_percent"]
    )
    assert meta["data"]["train_songs"] == len(train_songs) and validation["songs"] == len(held_out)
    engine = MelodyEngine.load(tiny_model_dir)
    rescored = score_songs(engine.step_model, engine.vocab, held_out).as_dict()
    assert rescored == pytest.approx({k: v for k, v in validation.items() if k != "method"})
    # and it learned: better than guessing among the vocabulary, the loss falling each epoch
    assert validation["nll_bits_per_step"] < math.log2(len(meta["vocabulary"]))
    losses = meta["history"]["loss"]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert len(meta["history"]["val_loss"]) == meta["epochs_run"]
    # plain Keras loading, no custom objects
    model = keras.saving.load_model(tiny_model_dir / "model.keras")
    assert model.output_shape[-1] == len(meta["vocabulary"])


def test_tiny_model_composes(tiny_engine):
    melody = tiny_engine.compose(MelodyRequest.parse("C4 D4 E4 seed=1 bars=2"))
    assert melody.tokens[:9] == ("60", "_", "_", "_", "62", "_", "_", "_", "64")


def test_vocabulary_is_reproducible(few_songs_dir, tiny_model_dir):
    corpus = preprocess(few_songs_dir)
    rebuilt = Vocabulary.from_sequences(s.tokens for s in corpus.songs)
    assert rebuilt == Vocabulary.load(tiny_model_dir / "vocab.json")
    assert MelodyEngine.load(tiny_model_dir).vocab == rebuilt
