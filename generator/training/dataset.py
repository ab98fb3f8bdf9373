"""Training examples streamed with tf.data, so memory stays flat as the corpus grows.

Every song is framed by the delimiter (``/ song /``) and cut into windows of at most ``window``
steps that start at the song's beginning; each window predicts every next step (not only the last),
so one pass over a song teaches the model all of it. Beside every input step lies its form context
(:mod:`generator.form`: position in the bar and meter, bars left, phrase group, lookback), computed
once per song. Only the id and context arrays live in memory; windows are sliced from them on the
fly and padded per batch, and padded steps carry zero weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from generator import form
from generator.training.corpus import Song
from generator.vocab import Vocabulary


@dataclass(frozen=True)
class WindowIndex:
    """A flat id array, its context rows, and the (start, length) of every window in it; lengths
    include the target."""

    ids: np.ndarray
    context: np.ndarray  # (len(ids), len(form.CONTEXT_COLUMNS)): the context of each input step
    starts: np.ndarray
    lengths: np.ndarray

    @property
    def target_count(self) -> int:
        return int((self.lengths - 1).sum())


def frame_song(vocab: Vocabulary, song: Song) -> np.ndarray:
    """A song's ids framed by delimiters, so the model learns how songs begin and end."""
    delimiter = vocab.delimiter_id
    return np.concatenate([[delimiter], vocab.encode(song.tokens), [delimiter]]).astype(np.int32)


def frame_context(vocab: Vocabulary, song: Song) -> np.ndarray:
    """Context rows aligned with :func:`frame_song`: row i describes the step that input i predicts.

    The framed song's last symbol (the closing delimiter) is never an input, so its row is zero.
    """
    rows = form.song_context(vocab.encode(song.tokens), song.layout, vocab.delimiter_id)
    return np.vstack([rows, np.zeros((1, rows.shape[1]), np.int32)])


def build_index(vocab: Vocabulary, songs: Sequence[Song], window: int) -> WindowIndex:
    pieces: list[np.ndarray] = []
    contexts: list[np.ndarray] = []
    starts: list[int] = []
    lengths: list[int] = []
    offset = 0
    for song in songs:
        framed = frame_song(vocab, song)
        for begin in range(0, len(framed) - 1, window):
            starts.append(offset + begin)
            lengths.append(min(window + 1, len(framed) - begin))
        pieces.append(framed)
        contexts.append(frame_context(vocab, song))
        offset += len(framed)
    columns = len(form.CONTEXT_COLUMNS)
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    context = np.concatenate(contexts) if contexts else np.zeros((0, columns), np.int32)
    return WindowIndex(ids, context, np.array(starts, np.int64), np.array(lengths, np.int64))


def make_dataset(
    index: WindowIndex,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    form_inputs: Sequence[str] = form.CONTEXT_COLUMNS,
):
    """tf.data batches of (inputs, targets, weights), bucketed by length to cut padding.

    The inputs are a dict: ``steps`` and one entry per form column the model reads
    (``form_inputs``), as the model names its inputs.
    """
    import tensorflow as tf

    ids = tf.constant(index.ids)
    context = tf.constant(index.context)
    data = tf.data.Dataset.from_tensor_slices((index.starts, index.lengths))
    if shuffle:
        data = data.shuffle(len(index.starts), seed=seed, reshuffle_each_iteration=True)

    def to_example(start, length):
        window = ids[start : start + length]
        rows = context[start : start + length - 1]
        inputs = {"steps": window[:-1]}
        inputs |= {name: rows[:, form.CONTEXT_COLUMNS.index(name)] for name in form_inputs}
        return inputs, window[1:], tf.ones([length - 1], tf.float32)

    data = data.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    boundaries = [b for b in (33, 65, 129, 193) if b < int(index.lengths.max(initial=2))]
    zero = np.int32(0)
    data = data.bucket_by_sequence_length(
        element_length_func=lambda x, y, w: tf.shape(x["steps"])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(
            {"steps": zero} | dict.fromkeys(form_inputs, zero),
            zero,
            np.float32(0.0),
        ),
    )
    return data.prefetch(tf.data.AUTOTUNE)
