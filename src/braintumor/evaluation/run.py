"""Evaluation of a saved model on a labelled class-per-folder split, with a report.

Every figure is also computed on the *hard* subset, the Testing images with no
near-duplicate in Training, because the public split leaks: a 1-nearest-neighbour pixel
lookup already scores 97.64% on all of Testing, so only the hard subset tells a model that
generalises from one that remembers. The figures are :mod:`braintumor.evaluation.metrics`'
and the report :mod:`braintumor.evaluation.markdown`'s.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.datasets.folders import ImageSet, load_folder
from braintumor.evaluation.collections import (
    collection_probe,
    collections_of,
    per_collection,
    tumour_detection,
)
from braintumor.evaluation.external import evaluate_tumour_folder, recipe_held_out
from braintumor.evaluation.markdown import render_markdown
from braintumor.evaluation.metrics import (
    BASELINES,
    served_figures,
    subset_metrics,
    summarize,
)
from braintumor.evaluation.ood_report import evaluate_ood
from braintumor.evaluation.plots import plot_confusion_matrix, plot_reliability
from braintumor.model.loaded import load_model
from braintumor.model.metadata import read_metadata
from braintumor.training.calibration import softmax

log = logging.getLogger(__name__)


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


def evaluate(model_path: Path, data_dir: Path, out_dir: Path, hard_subset: Path | None = None,
             batch_size: int = 64, ood: bool = True, sources: Path | None = None,
             extra_tumour: Path | None = None, held_out_of: Path | None = None,
             settings: Settings | None = None) -> dict:
    """Evaluate ``model_path`` on ``data_dir`` and write the report into ``out_dir``.

    Writes ``report.json``, ``report.md``, ``confusion_matrix.png`` (and
    ``confusion_matrix_hard.png``) and ``reliability.png``; returns the report, whose
    ``summary`` holds the headline numbers. A missing or non-matching hard-subset file is
    noted in the report rather than failing the evaluation. With ``ood`` the report also
    measures the not-a-brain-MRI detector: Testing against the OOD set of
    :mod:`braintumor.evaluation.ood_set` (section "ood", see
    :mod:`braintumor.evaluation.ood_report`).
    With ``sources`` (the dataset's sources.tsv) it adds figures by collection, tumour
    sensitivity and specificity and the collection probe
    (:mod:`braintumor.evaluation.collections`); with ``extra_tumour`` the tumour slices
    from outside the dataset (:mod:`braintumor.evaluation.external`).
    """
    started = time.perf_counter()
    settings = settings or Settings()
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    model = load_model(settings.model, path=model_path)
    class_names = list(model.class_names)
    images = load_folder(data_dir, class_names, model.input_spec.size, cache_dir=None,
                         framing=model.input_spec.framing)
    outputs = model.outputs_of_pixels(images.pixels, batch_size=batch_size)
    logits, probs = outputs.logits.astype(np.float64), outputs.probabilities.astype(np.float64)
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
        collections = collections_of(images.paths, Path(sources), data_dir.name)
        report["collections"] = {
            "per_collection": per_collection(predicted, images.labels, collections,
                                             class_names, answered),
            "tumour_detection": tumour_detection(predicted, images.labels, class_names,
                                                 answered),
            "probe": collection_probe(outputs.features, images.labels, collections, class_names),
        }
        report["summary"]["tumour_sensitivity"] = \
            report["collections"]["tumour_detection"]["sensitivity"]
        report["summary"]["tumour_specificity"] = \
            report["collections"]["tumour_detection"]["specificity"]
    if extra_tumour is not None and Path(extra_tumour).is_dir():
        recipe_of = model.metadata.training
        if held_out_of is not None:
            other = read_metadata(Path(held_out_of))
            recipe_of = (other[0].get("training") or {}) if other else {}
        groups, used = recipe_held_out(recipe_of, Path(extra_tumour))
        section = evaluate_tumour_folder(Classifier(model, settings),
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
