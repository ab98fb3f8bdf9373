"""An interpolated Kneser-Ney n-gram over step symbols: the baseline the LSTM must beat.

It sees the same framed songs (``/ song /``) and is scored the same way as the network (every step
of every held-out song, its closing delimiter included), so the two figures are comparable.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from generator.training.corpus import Song
from generator.training.scoring import SongScores, Tally, known_songs
from generator.vocab import Vocabulary

DISCOUNT = 0.75


class KneserNey:
    """Interpolated Kneser-Ney with one absolute discount; contexts shorter than ``order - 1``
    at a song's start use the delimiter padding the song begins with."""

    def __init__(self, vocab: Vocabulary, order: int = 5, discount: float = DISCOUNT):
        if order < 1:
            raise ValueError("order must be at least 1")
        self.vocab = vocab
        self.order = order
        self.discount = discount
        # counts[n][context] = Counter(next symbol id); highest order uses raw counts,
        # lower orders use continuation counts (how many distinct left contexts precede).
        self._counts: list[dict[tuple[int, ...], Counter[int]]] = [
            defaultdict(Counter) for _ in range(order)
        ]

    def _framed(self, song: Song) -> list[int]:
        pad = [self.vocab.delimiter_id] * (self.order - 1)
        return [*pad, *self.vocab.encode(song.tokens).tolist(), self.vocab.delimiter_id]

    def fit(self, songs: Sequence[Song]) -> KneserNey:
        top = self.order - 1
        grams: set[tuple[int, ...]] = set()
        for song in known_songs(self.vocab, songs)[0]:
            ids = self._framed(song)
            for i in range(top, len(ids)):
                gram = tuple(ids[i - top : i + 1])
                self._counts[top][gram[:-1]][gram[-1]] += 1
                grams.add(gram)
        self._fill_continuations(grams)
        return self

    def _fill_continuations(self, grams: set[tuple[int, ...]]) -> None:
        """Lower-order counts are numbers of distinct left extensions (the Kneser-Ney idea)."""
        current = grams
        for level in range(self.order - 2, -1, -1):
            extensions: Counter[tuple[int, ...]] = Counter(g[1:] for g in current)
            for suffix, distinct_left in extensions.items():
                self._counts[level][suffix[:-1]][suffix[-1]] = distinct_left
            current = set(extensions)

    def distribution(self, history: Sequence[int]) -> np.ndarray:
        """P(next | last order-1 symbols of history) over the whole vocabulary."""
        size = len(self.vocab)
        probs = np.full(size, 1.0 / size)
        for level in range(self.order):
            context = tuple(history[len(history) - level :]) if level else ()
            counts = self._counts[level].get(context)
            if not counts:
                continue
            total = sum(counts.values())
            discounted = np.zeros(size)
            for symbol, count in counts.items():
                discounted[symbol] = max(count - self.discount, 0.0)
            backoff = self.discount * len(counts) / total
            probs = discounted / total + backoff * probs
        return probs

    def score(self, songs: Sequence[Song]) -> SongScores:
        usable, skipped = known_songs(self.vocab, songs)
        tally = Tally(self.vocab)
        for song in usable:
            ids = self._framed(song)
            for position in range(self.order - 1, len(ids)):  # every step and the closing "/"
                probs = self.distribution(ids[:position])[None, :]
                tally.add(probs, np.array([ids[position]]), np.array([True]))
        return tally.scores(len(usable), skipped)
