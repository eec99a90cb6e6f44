"""The evaluation's pictures: confusion matrices and the reliability diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path,
                          title: str = "Confusion matrix") -> None:
    """Counts on a blue scale, each cell labelled, rows = true, columns = predicted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=120)
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title, fontsize=10)
    threshold = matrix.max() / 2.0
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > threshold else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(raw: dict, calibrated: dict, path: Path, ece: float,
                     ece_calibrated: float, temperature: float) -> None:
    """Two reliability diagrams side by side: before and after temperature scaling.

    Bars are each bin's accuracy at its mean confidence; the diagonal is perfect
    calibration, so a bar below it is over-confidence.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=120, sharey=True)
    panels = ((raw, f"Before calibration (ECE {ece:.3f})"),
              (calibrated, f"After, T = {temperature:.2f} (ECE {ece_calibrated:.3f})"))
    for ax, (bins, title) in zip(axes, panels, strict=True):
        edges = np.asarray(bins["edges"])
        width = edges[1] - edges[0]
        filled = [i for i, n in enumerate(bins["count"]) if n > 0]
        ax.bar(edges[:-1][filled], [bins["accuracy"][i] for i in filled], width=width,
               align="edge", color="#4c72b0", edgecolor="white", label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="perfect calibration")
        ax.scatter([bins["confidence"][i] for i in filled],
                   [bins["accuracy"][i] for i in filled], s=10, color="#dd8452", zorder=3,
                   label="mean confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Confidence")
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("Accuracy")
    axes[0].legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
