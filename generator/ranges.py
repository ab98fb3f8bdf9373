"""Bounds of the request grammar that settings and adapters share, in a module that imports
nothing heavy (settings load before music21 or NumPy should start)."""

# Below this temperature (or with topk=1) sampling is nearly greedy: melodies loop and different
# seed= give the same tune (C4 D4 E4, 20 seeds: 11 different melodies at 0.2, 18 at 0.4, 20 at 0.5).
MIN_TEMPERATURE = 0.5
MAX_TEMPERATURE = 2.0
