"""Generated melodies measured against the corpus: features, distribution overlaps, plots."""
