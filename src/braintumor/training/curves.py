"""The learning curve of a training run, drawn from the history Keras' CSVLogger wrote.

Why a picture: whether more epochs, more data or a bigger network would help is read off
the gap between the training and validation curves and whether they are still moving,
which one number (the best epoch's accuracy) cannot show. The model card shows it.
"""

from __future__ import annotations

import csv
from pathlib import Path


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """Columns of a CSVLogger file as lists; a resumed run's repeated epochs keep the last."""
    by_epoch: dict[int, dict[str, float]] = {}
    with Path(history_csv).open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_epoch[int(row["epoch"])] = {k: float(v) for k, v in row.items() if v != ""}
    epochs = sorted(by_epoch)
    columns = sorted({k for row in by_epoch.values() for k in row})
    return {k: [by_epoch[e].get(k, float("nan")) for e in epochs] for k in columns}


def plot_learning_curve(history_csv: Path, path: Path, title: str = "") -> Path:
    """Loss and accuracy per epoch, training and validation, with the best epoch marked.

    The best epoch is the one with the lowest validation loss: the weights the pipeline
    keeps (its ModelCheckpoint monitors ``val_loss``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    history = read_history(history_csv)
    # a model with several outputs names the class's accuracy after its output
    if "accuracy" not in history and "predictions_accuracy" in history:
        history["accuracy"] = history["predictions_accuracy"]
        history["val_accuracy"] = history["val_predictions_accuracy"]
    epochs = [int(e) + 1 for e in history["epoch"]]
    best = epochs[min(range(len(epochs)), key=lambda i: history["val_loss"][i])]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric, label in ((loss_axis, "loss", "loss"),
                                (accuracy_axis, "accuracy", "accuracy")):
        axis.plot(epochs, history[metric], label=f"training {label} (augmented)")
        axis.plot(epochs, history[f"val_{metric}"], label=f"validation {label}")
        axis.axvline(best, color="grey", linestyle="--", linewidth=1,
                     label=f"kept: epoch {best}")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    loss_axis.set_yscale("log")
    accuracy_axis.set_ylim(max(0.0, min(history["val_accuracy"]) - 0.02), 1.0)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
