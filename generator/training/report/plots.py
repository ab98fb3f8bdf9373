"""Pictures for the report: one PNG per feature, generated sets against the held-out songs."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def histogram_plot(
    path: Path, title: str, labels: list[str], series: dict[str, np.ndarray]
) -> None:
    """Mean shares per bin, one bar group per bin and one bar per melody set."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=110)
    width = 0.8 / len(series)
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        axes.bar(x + i * width - 0.4 + width / 2, values, width, label=name)
    axes.set_xticks(x, labels)
    axes.set_ylabel("share")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def distribution_plot(path: Path, title: str, series: dict[str, np.ndarray]) -> None:
    """Overlaid step histograms of a number per melody."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=110)
    everything = np.concatenate(list(series.values()))
    bins = np.histogram_bin_edges(everything, bins=min(30, max(5, len(np.unique(everything)))))
    for name, values in series.items():
        axes.hist(values, bins=bins, histtype="step", linewidth=1.6, density=True, label=name)
    axes.set_title(title)
    axes.set_ylabel("density")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
