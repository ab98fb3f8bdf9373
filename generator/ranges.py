"""Bounds of the request grammar that settings, limits and adapters share, in a module that
imports nothing heavy (settings load before music21 or NumPy should start)."""

# Below this temperature (or with topk=1) sampling is nearly greedy: melodies loop and different
# seed= give the same tune (C4 D4 E4, 20 seeds: 11 different melodies at 0.2, 18 at 0.4, 20 at 0.5).
MIN_TEMPERATURE = 0.5
MAX_TEMPERATURE = 2.0
MAX_BARS = 64
MAX_SEED_NOTES = 64
MAX_STEPS = 1024
MIN_BPM, MAX_BPM = 30, 300
MAX_SEED = 2**32 - 1
MIN_TOP_K, MAX_TOP_K = 2, 1000
MAX_PICKUP_QUARTERS = 3.75  # an upbeat is shorter than the longest bar the model knows (4/4)
