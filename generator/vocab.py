"""The model's vocabulary: symbol ↔ id, the same on every run and machine.

Ids are assigned by rule, not by the order of a Python set: the delimiter, rest and hold come first,
then the MIDI pitches seen in the data in ascending order. The same data therefore always gives the
same ``vocab.json``, byte for byte, and a model's ids never silently change meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.encoding import DELIMITER, HOLD, REST

SPECIAL_SYMBOLS = (DELIMITER, REST, HOLD)


@dataclass(frozen=True)
class Vocabulary:
    symbols: tuple[str, ...]

    @classmethod
    def from_sequences(cls, sequences: Iterable[Sequence[str]]) -> Vocabulary:
        pitches: set[int] = set()
        for tokens in sequences:
            pitches.update(int(t) for t in tokens if t not in SPECIAL_SYMBOLS)
        return cls(SPECIAL_SYMBOLS + tuple(str(p) for p in sorted(pitches)))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(tuple(data["symbols"]))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"symbols": list(self.symbols)}, indent=1) + "\n")

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def index(self) -> dict[str, int]:
        return {symbol: i for i, symbol in enumerate(self.symbols)}

    @property
    def delimiter_id(self) -> int:
        return self.symbols.index(DELIMITER)

    @property
    def hold_id(self) -> int:
        return self.symbols.index(HOLD)

    @property
    def rest_id(self) -> int:
        return self.symbols.index(REST)

    @property
    def pitches(self) -> list[int]:
        return [int(s) for s in self.symbols if s not in SPECIAL_SYMBOLS]

    @property
    def pitch_range(self) -> tuple[int, int]:
        pitches = self.pitches
        return min(pitches), max(pitches)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        index = self.index
        try:
            return np.array([index[t] for t in tokens], dtype=np.int32)
        except KeyError as missing:
            raise ValueError(f"symbol {missing} is not in this model's vocabulary") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.symbols[i] for i in ids]
