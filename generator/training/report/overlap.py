"""How alike two sets of melodies are, feature by feature (Yang & Lerch 2018, re-implemented).

For a feature, take the distances between every pair of melodies inside the reference set
(intra-set) and between every reference melody and every generated one (inter-set). Smooth both
distance samples with a Gaussian kernel density estimate and measure the area the two densities
share: 1 means the generated melodies sit among the real ones exactly as the real ones sit among
themselves; 0 means they live elsewhere. Distances are absolute differences for numbers and
Euclidean distances for histograms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GRID_POINTS = 512


def _as_rows(values: Sequence[float] | Sequence[np.ndarray]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[:, None] if array.ndim == 1 else array


def intra_distances(values) -> np.ndarray:
    rows = _as_rows(values)
    diff = rows[:, None, :] - rows[None, :, :]
    distances = np.sqrt((diff**2).sum(-1))
    upper = np.triu_indices(len(rows), k=1)
    return distances[upper]


def inter_distances(values_a, values_b) -> np.ndarray:
    a, b = _as_rows(values_a), _as_rows(values_b)
    diff = a[:, None, :] - b[None, :, :]
    return np.sqrt((diff**2).sum(-1)).ravel()


def _bandwidth(sample: np.ndarray) -> float:
    """Scott's rule, with a floor so a sample of identical values still has a width."""
    spread = float(np.std(sample))
    return max(1.06 * spread * len(sample) ** (-1 / 5), 1e-3)


def kde(sample: np.ndarray, grid: np.ndarray) -> np.ndarray:
    bandwidth = _bandwidth(sample)
    if len(sample) > 4000:  # the density is smooth; a fixed random subsample is plenty
        sample = np.random.default_rng(0).choice(sample, 4000, replace=False)
    z = (grid[:, None] - sample[None, :]) / bandwidth
    density = np.exp(-0.5 * z**2).sum(axis=1) / (len(sample) * bandwidth * np.sqrt(2 * np.pi))
    return density


def overlap_area(sample_a: np.ndarray, sample_b: np.ndarray) -> float:
    """Area shared by the two samples' smoothed densities, between 0 and 1."""
    if len(sample_a) == 0 or len(sample_b) == 0:
        return 0.0
    width = 4 * max(_bandwidth(sample_a), _bandwidth(sample_b))
    low = min(sample_a.min(), sample_b.min()) - width
    high = max(sample_a.max(), sample_b.max()) + width
    grid = np.linspace(low, high, GRID_POINTS)
    shared = np.minimum(kde(sample_a, grid), kde(sample_b, grid))
    return float(np.clip(np.trapezoid(shared, grid), 0.0, 1.0))


def feature_overlap(reference, generated) -> float:
    """Yang & Lerch's overlap of the intra-reference and reference-to-generated distances."""
    return overlap_area(intra_distances(reference), inter_distances(reference, generated))
