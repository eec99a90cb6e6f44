"""Measuring the not-a-brain-MRI detector: real scans against the OOD set.

Why each rule is measured on its own as well as combined: a rule earns its place only if
it refuses OOD images the others let through without refusing real scans. The report
therefore gives, for the Testing scans and for each OOD source, the share refused by the
input checks, by the feature distance, by the confidence rule, and by the decision the
service actually makes, plus the AUROC of each continuous score (Testing = negative,
OOD = positive). The thresholds are the model's own (chosen on its validation split by
``braintumor fit-ood``); nothing here is tuned on Testing.

The confidence rule is measured at the 0.5% quantile of the validation scans' calibrated
top probability (recorded by fit-ood), so it refuses about as many real scans as the
feature distance does and the two compare at the same cost.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.decoding import DecodedImage, decode_file, decode_image
from braintumor.evaluation import ood_set as evalset
from braintumor.model.loaded import LoadedModel
from braintumor.ood.auroc import roc_auc
from braintumor.ood.detector import OodDetector

log = logging.getLogger(__name__)

#: Testing scans fed to the scrambled-MRI source (a seeded sample).
SCRAMBLED_SCANS = 60


@dataclass
class Scores:
    """Per image: the source, the input checks that failed, confidence and distance."""

    sources: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    failed_checks: list[list[str]] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    distance: list[float] = field(default_factory=list)
    features: list[float] = field(default_factory=list)
    layout: list[float] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)
    check_seconds: float = 0.0
    score_seconds: float = 0.0

    def arrays(self) -> dict[str, np.ndarray]:
        return {"input": np.array([bool(f) for f in self.failed_checks], dtype=bool),
                "confidence": np.array(self.confidence, dtype=np.float64),
                "distance": np.array(self.distance, dtype=np.float64),
                "features": np.array(self.features, dtype=np.float64),
                "layout": np.array(self.layout, dtype=np.float64),
                "flagged": np.array(self.flagged, dtype=bool)}


def score_images(classifier: Classifier, images: Iterable[tuple[str, str, DecodedImage]],
                 batch_size: int = 64, scores: Scores | None = None) -> Scores:
    """Run the served chain (:meth:`Classifier.assess`, no Grad-CAM) over (source, name,
    decoded image) triples and keep each rule's result."""
    scores = scores or Scores()

    def flush(batch: list[tuple[str, str, DecodedImage]]) -> None:
        assessed = classifier.assess([decoded for *_, decoded in batch], explain=False)
        for (source, name, _), assessment in zip(batch, assessed, strict=True):
            if assessment.error is not None:
                raise assessment.error
            probabilities = assessment.probabilities
            if assessment.ood is None or probabilities is None:
                raise ValueError("the OOD report needs every image to reach the model "
                                 "(an OOD_POLICY=warn classifier)")
            parts = assessment.scores
            scores.sources.append(source)
            scores.names.append(name)
            scores.failed_checks.append(sorted(assessment.checks))
            scores.confidence.append(float(np.max(probabilities)))
            scores.distance.append(max(parts.values()) if parts else np.nan)
            scores.features.append(parts.get("features", np.nan))
            scores.layout.append(parts.get("layout", np.nan))
            scores.flagged.append(assessment.ood.flagged)
            scores.check_seconds += assessment.seconds.get("checks", 0.0)
            scores.score_seconds += assessment.seconds.get("distances", 0.0)

    batch: list[tuple[str, str, DecodedImage]] = []
    for item in images:
        batch.append(item)
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    return scores


def _decoded_files(data_dir: Path, paths: list[str]) -> Iterator[tuple[str, str, DecodedImage]]:
    for relative in paths:
        yield "Testing", relative, decode_file(str(data_dir / relative))


def _decoded_items(items: Iterable[evalset.OodItem]
                   ) -> Iterator[tuple[str, str, DecodedImage]]:
    for item in items:
        buffer = io.BytesIO()
        item.image.save(buffer, format="PNG")
        yield item.source, item.name, decode_image(buffer.getvalue())


def warn_classifier(model: LoadedModel) -> Classifier:
    """The served chain for a model, every image answered and flagged (OOD_POLICY=warn)
    so that each rule can be measured on all of them."""
    return Classifier(model, Settings(OOD_POLICY="warn"),
                      ood=OodDetector.for_model(model, policy="warn"))


def _rate(mask: np.ndarray) -> float | None:
    return None if mask.size == 0 else float(mask.mean())


def _component_rates(arrays: dict[str, np.ndarray], index: np.ndarray, threshold: float | None,
                     min_confidence: float | None) -> dict[str, float | None]:
    a = {k: v[index] for k, v in arrays.items()}
    confidence = (a["confidence"] < min_confidence) if min_confidence is not None else None

    def above(key: str) -> float | None:
        return None if threshold is None else _rate(~(a[key] <= threshold))

    return {
        "n": int(index.size),
        "input_checks": _rate(a["input"]),
        "features": above("features"),
        "layout": above("layout"),
        "distance": above("distance"),
        "confidence": None if confidence is None else _rate(confidence),
        "input_or_confidence": None if confidence is None else _rate(a["input"] | confidence),
        "decision": _rate(a["flagged"]),
    }


def evaluate_ood(model: LoadedModel, data_dir: Path, paths: list[str], seed: int = 0,
                 batch_size: int = 64) -> dict:
    """The OOD section of the evaluation report (see the module docstring)."""
    started = time.perf_counter()
    classifier = warn_classifier(model)
    detector = classifier.ood
    description = model.metadata.ood if detector.fits is not None else {}
    min_confidence = (description.get("validation") or {}).get("confidence_p0_5")
    scores = score_images(classifier, _decoded_files(data_dir, paths), batch_size)
    n_testing = len(scores.names)
    check_ms = 1000 * scores.check_seconds / max(n_testing, 1)
    score_ms = 1000 * scores.score_seconds / max(n_testing, 1)

    rng = np.random.default_rng(seed)
    sample = rng.choice(len(paths), size=min(SCRAMBLED_SCANS, len(paths)), replace=False)
    scans = []
    for i in sorted(sample):
        with Image.open(data_dir / paths[i]) as opened:
            scans.append(opened.convert("L"))
    items = evalset.build(scans, seed=seed)
    score_images(classifier, _decoded_items(items), batch_size, scores)

    arrays = scores.arrays()
    sources = np.array(scores.sources)
    testing = np.flatnonzero(sources == "Testing")
    ood = np.flatnonzero(sources != "Testing")
    positive = sources != "Testing"
    threshold = detector.threshold

    auroc: dict[str, float | None] = {}
    if detector.fits is not None:
        for key in ("features", "layout", "distance"):
            auroc[key] = roc_auc(np.nan_to_num(arrays[key], nan=np.inf), positive)
        combined = np.where(arrays["input"], np.inf, arrays["distance"])
    else:
        combined = np.where(arrays["input"], np.inf, 1.0 - arrays["confidence"])
    auroc["confidence"] = roc_auc(1.0 - arrays["confidence"], positive)
    auroc["combined"] = roc_auc(combined, positive)

    per_source = {}
    for source in dict.fromkeys(scores.sources):
        if source == "Testing":
            continue
        index = np.flatnonzero(sources == source)
        per_source[source] = _component_rates(arrays, index, threshold, min_confidence)
    accepted = [{"source": scores.sources[i], "name": scores.names[i],
                 "distance": None if np.isnan(arrays["distance"][i])
                 else round(float(arrays["distance"][i]), 3),
                 "confidence": round(float(arrays["confidence"][i]), 4)}
                for i in ood if not arrays["flagged"][i]]
    refused_scans = [{"name": scores.names[i], "checks": scores.failed_checks[i],
                      "distance": None if np.isnan(arrays["distance"][i])
                      else round(float(arrays["distance"][i]), 3),
                      "confidence": round(float(arrays["confidence"][i]), 4)}
                     for i in testing if arrays["flagged"][i]]
    only_rule: dict[str, dict[str, int]] = {}
    if threshold is not None:
        rules = {"input_checks": arrays["input"],
                 "features": ~(arrays["features"] <= threshold),
                 "layout": ~(arrays["layout"] <= threshold)}
        fired = np.sum(list(rules.values()), axis=0)
        for name, mask in rules.items():
            alone = mask & (fired == 1)
            only_rule[name] = {"Testing": int(alone[testing].sum()), "OOD": int(alone[ood].sum())}
    checks_fired: dict[str, dict[str, int]] = {}
    for i, failed in enumerate(scores.failed_checks):
        group = "Testing" if scores.sources[i] == "Testing" else "OOD"
        for check in failed:
            checks_fired.setdefault(check, {"Testing": 0, "OOD": 0})[group] += 1
    testing_rates = _component_rates(arrays, testing, threshold, min_confidence)
    ood_rates = _component_rates(arrays, ood, threshold, min_confidence)
    report = {
        "method": description.get("method") or "input checks only (no feature statistics)",
        "threshold": threshold,
        "min_confidence_measured": min_confidence,
        "min_confidence_used": detector.min_confidence,
        "auroc": auroc,
        "testing": testing_rates,
        "ood": ood_rates,
        "sources": per_source,
        "checks_fired": checks_fired,
        "refused_by_this_rule_alone": only_rule,
        "accepted_ood": accepted,
        "refused_testing": refused_scans,
        "check_ms_per_image": round(check_ms, 3),
        "distance_ms_per_image": round(score_ms, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log.info("OOD: AUROC %s; Testing refused %.2f%%, OOD refused %.2f%%", auroc,
             100 * (testing_rates["decision"] or 0), 100 * (ood_rates["decision"] or 0))
    return report


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def render_markdown(ood: dict) -> list[str]:
    """The OOD section of report.md."""
    auroc = ood["auroc"]

    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:.4f}"

    threshold = ood["threshold"]
    lines = [
        "## Not a brain MRI (out-of-distribution)",
        "",
        f"- Method: input checks, then {ood['method']}; limit "
        f"{'—' if threshold is None else f'{threshold:.3f}'} (chosen on validation)",
        f"- Confidence rule, measured at the validation 0.5% quantile: "
        f"{'—' if ood['min_confidence_measured'] is None else ood['min_confidence_measured']}"
        f"; used by the service: "
        f"{'no' if ood['min_confidence_used'] is None else ood['min_confidence_used']}",
        f"- AUROC, Testing vs OOD set: combined {num(auroc.get('combined'))}; distances "
        f"{num(auroc.get('distance'))} (features {num(auroc.get('features'))}, layout "
        f"{num(auroc.get('layout'))}); confidence {num(auroc.get('confidence'))}",
        f"- Cost per image: input checks {ood['check_ms_per_image']:.3f} ms, distance "
        f"{ood['distance_ms_per_image']:.4f} ms (the features come with the one model pass)",
        "",
        "Share refused by each rule alone and by the service's decision (input checks OR "
        "distance, the distance being the larger of features and layout):",
        "",
        "| Images | n | Input checks | Features | Layout | Distance | Confidence "
        "| Input or confidence | **Decision** |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("Testing (real scans)", ood["testing"]), ("OOD set, all", ood["ood"])]
    rows += [(f"OOD: {name}", rates) for name, rates in ood["sources"].items()]
    for label, r in rows:
        lines.append(f"| {label} | {r['n']} | {_pct(r['input_checks'])} | "
                     f"{_pct(r['features'])} | {_pct(r['layout'])} | {_pct(r['distance'])} | "
                     f"{_pct(r['confidence'])} | {_pct(r['input_or_confidence'])} | "
                     f"**{_pct(r['decision'])}** |")
    if ood.get("refused_by_this_rule_alone"):
        lines += ["", "Refused by this rule and no other (a rule earns its place by refusing OOD "
                      "images that the others let through): " + ", ".join(
                          f"{name.replace('_', ' ')} {v['OOD']} OOD / {v['Testing']} Testing"
                          for name, v in ood["refused_by_this_rule_alone"].items())]
    lines += ["", "Input checks that fired: " + (", ".join(
        f"{k} (Testing {v['Testing']}, OOD {v['OOD']})" for k, v in ood["checks_fired"].items())
        or "none"), ""]
    if ood["accepted_ood"]:
        lines += ["OOD images the service would accept: " + ", ".join(
            f"{a['source']}/{a['name']}" for a in ood["accepted_ood"][:40])
            + (" ..." if len(ood["accepted_ood"]) > 40 else ""), ""]
    if ood["refused_testing"]:
        lines += ["Testing scans the service would refuse: " + ", ".join(
            r["name"] for r in ood["refused_testing"][:40]), ""]
    return lines
