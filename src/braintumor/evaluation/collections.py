"""Figures by public collection: where the answers come right, and whether the model's
features still tell the collections apart.

In the four-class dataset the class is confounded with the collection (figshare holds
every glioma, Br35H most "No Tumor"); ``sources.tsv`` names each file's collection. Two
things follow. Accuracy must be read per collection (a model can be right on figshare and
wrong on everything else). And a linear probe that predicts the collection from the
penultimate features *within one class* measures how much collection identity the
network carries: across classes, collection and class are the same thing, so only the
within-class figure means anything. The probe is a logistic regression scored by 5-fold
cross-validation (scikit-learn), next to the majority-class rate it must beat.
"""

from __future__ import annotations

import numpy as np

from braintumor.classes import no_tumour_index
from braintumor.training.sources import UNKNOWN, read_sources


def collections_of(paths: list[str], sources_file, split: str) -> list[str]:
    where = read_sources(sources_file, split)
    return [where.get(p, UNKNOWN) for p in paths]


def per_collection(predicted: np.ndarray, labels: np.ndarray, collections: list[str],
                   class_names: list[str], answered: np.ndarray | None = None) -> list[dict]:
    """Accuracy of each (class, collection) cell and of each collection overall.

    ``answered`` (optional) marks the images the service answered; a refused one counts
    as an error, as it does for a client.
    """
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    right = predicted == labels
    if answered is not None:
        right = right & np.asarray(answered)
    cols = np.asarray(collections)
    rows = []
    for source in sorted(set(collections)):
        in_source = cols == source
        rows.append({"collection": source, "class": "all", "n": int(in_source.sum()),
                     "accuracy": float(right[in_source].mean())})
        for label, name in enumerate(class_names):
            cell = in_source & (labels == label)
            if cell.any():
                rows.append({"collection": source, "class": name, "n": int(cell.sum()),
                             "accuracy": float(right[cell].mean())})
    return rows


def tumour_detection(predicted: np.ndarray, labels: np.ndarray, class_names: list[str],
                     answered: np.ndarray | None = None) -> dict:
    """Tumour (any type) versus no tumour: sensitivity and specificity.

    With ``answered``, a refused image is a miss either way (no answer is not a finding).
    """
    no_tumour = no_tumour_index(class_names)
    if no_tumour is None:
        raise ValueError(f"no class among {class_names} means no tumour")
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    ok = np.ones(len(labels), bool) if answered is None else np.asarray(answered)
    has = labels != no_tumour
    said = predicted != no_tumour
    return {
        "tumour_scans": int(has.sum()),
        "no_tumour_scans": int((~has).sum()),
        "sensitivity": float((said & has & ok).sum() / max(has.sum(), 1)),
        "specificity": float((~said & ~has & ok).sum() / max((~has).sum(), 1)),
    }


def collection_probe(features: np.ndarray, labels: np.ndarray, collections: list[str],
                     class_names: list[str], folds: int = 5, seed: int = 0) -> list[dict]:
    """Cross-validated accuracy of a linear probe predicting the collection from the
    features, within each class that has two collections or more (and overall)."""
    # scikit-learn is the `eval` extra: only the probe needs it
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = np.asarray(collections)
    rows = []
    scopes = [("all", np.ones(len(labels), bool))] + [
        (name, np.asarray(labels) == label) for label, name in enumerate(class_names)]
    for scope, mask in scopes:
        target = cols[mask]
        values, counts = np.unique(target, return_counts=True)
        keep = np.isin(target, values[counts >= folds])
        if len(values[counts >= folds]) < 2:
            continue
        x, y = np.asarray(features)[mask][keep], target[keep]
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        scores = cross_val_score(probe, x, y, cv=splitter)
        _, kept_counts = np.unique(y, return_counts=True)
        rows.append({"class": scope, "n": len(y),
                     "collections": {str(v): int(c) for v, c in zip(*np.unique(
                         y, return_counts=True), strict=True)},
                     "probe_accuracy": float(scores.mean()),
                     "majority_rate": float(kept_counts.max() / len(y))})
    return rows


def render_markdown(section: dict) -> list[str]:
    def pct(v: float) -> str:
        return f"{100 * v:.2f}%"

    det = section["tumour_detection"]
    lines = [
        "## By collection",
        "",
        "Collections from the dataset's `sources.tsv`; answers as the service gives them "
        "(a refusal counts as an error).",
        "",
        "| collection | class | n | accuracy |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {r['collection']} | {r['class']} | {r['n']} | {pct(r['accuracy'])} |"
              for r in section["per_collection"]]
    lines += [
        "",
        "## Tumour versus no tumour",
        "",
        f"Sensitivity {pct(det['sensitivity'])} ({det['tumour_scans']} tumour scans), "
        f"specificity {pct(det['specificity'])} ({det['no_tumour_scans']} without); "
        "a refusal counts as a miss.",
        "",
    ]
    if section.get("probe"):
        lines += [
            "## Collection probe",
            "",
            "A linear probe (logistic regression, 5-fold cross-validation) predicting the "
            "collection from the penultimate features. Within a class, a probe far above the "
            "majority rate means the network still carries the collection's identity.",
            "",
            "| class | n | collections | probe accuracy | majority rate |",
            "|---|---:|---|---:|---:|",
        ]
        lines += [f"| {r['class']} | {r['n']} | {r['collections']} | "
                  f"{pct(r['probe_accuracy'])} | {pct(r['majority_rate'])} |"
                  for r in section["probe"]]
        lines.append("")
    return lines
