"""Training examples streamed with tf.data, so memory stays flat as the corpus grows.

Every song is framed by the delimiter (``/ song /``) and cut into windows of at most ``window``
steps that start at the song's beginning; each window predicts every next step (not only the last),
so one pass over a song teaches the model all of it. Only one int32 array of ids lives in memory;
windows are sliced from it on the fly and padded per batch, and padded steps carry zero weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from generator.corpus import Song
from generator.vocab import Vocabulary


@dataclass(frozen=True)
class WindowIndex:
    """A flat id array and the (start, length) of every window in it; lengths include the target."""

    ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @property
    def target_count(self) -> int:
        return int((self.lengths - 1).sum())


def frame_song(vocab: Vocabulary, song: Song) -> np.ndarray:
    """A song's ids framed by delimiters, so the model learns how songs begin and end."""
    delimiter = vocab.delimiter_id
    return np.concatenate([[delimiter], vocab.encode(song.tokens), [delimiter]]).astype(np.int32)


def build_index(vocab: Vocabulary, songs: Sequence[Song], window: int) -> WindowIndex:
    pieces: list[np.ndarray] = []
    starts: list[int] = []
    lengths: list[int] = []
    offset = 0
    for song in songs:
        framed = frame_song(vocab, song)
        for begin in range(0, len(framed) - 1, window):
            starts.append(offset + begin)
            lengths.append(min(window + 1, len(framed) - begin))
        pieces.append(framed)
        offset += len(framed)
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    return WindowIndex(ids, np.array(starts, np.int64), np.array(lengths, np.int64))


def make_dataset(index: WindowIndex, batch_size: int, *, shuffle: bool, seed: int = 0):
    """tf.data batches of (inputs, targets, weights), bucketed by length to cut padding."""
    import tensorflow as tf

    ids = tf.constant(index.ids)
    data = tf.data.Dataset.from_tensor_slices((index.starts, index.lengths))
    if shuffle:
        data = data.shuffle(len(index.starts), seed=seed, reshuffle_each_iteration=True)

    def to_example(start, length):
        window = ids[start : start + length]
        return window[:-1], window[1:], tf.ones([length - 1], tf.float32)

    data = data.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    boundaries = [b for b in (33, 65, 129, 193) if b < int(index.lengths.max(initial=2))]
    data = data.bucket_by_sequence_length(
        element_length_func=lambda x, y, w: tf.shape(x)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(np.int32(0), np.int32(0), np.float32(0.0)),
    )
    return data.prefetch(tf.data.AUTOTUNE)
