"""The not-a-brain-MRI decision: input checks, distances and confidence, combined.

Why a combination: each signal misses something the others see. The input checks
(:mod:`braintumor.ood.checks`) refuse blank, coloured, noise-like and strip-shaped
pictures without asking the model, and work for any model. The distances
(:mod:`braintumor.ood.mahalanobis`) are the strong signal: the penultimate features
refuse grey photographs, other kinds of medical images, patterns and smooth noise; the
layout (:mod:`braintumor.ood.layout`) refuses scans cut into patches and shuffled, which
the pooled features cannot see. Both need statistics fitted offline on the model's
training scans (:mod:`braintumor.training.ood_fit`). Any one rule refusing is enough: the
decision is the OR of the rules, and ``reasons`` lists every rule that fired, in words.

The calibrated confidence was measured too and is *not* used: on the shipped model it
separates real scans from the OOD set barely better than chance (AUROC about 0.7; the
figures are in the README's "Out-of-distribution inputs") and every OOD image it refuses
at the cost of 0.5% of real scans is refused by the other rules anyway. A model without
fitted statistics is therefore checked by the input checks alone, which its answers say,
unless its metadata asks for the confidence rule (``"ood": {"min_confidence": 0.45}``).

``score`` is the larger of the two distances, each divided by its validation scale, so
that 1 is the distance the 99.5th-percentile validation scan reaches; ``threshold`` is the
limit above which an image is refused (fitted, or OOD_THRESHOLD). Both are None for a
model without statistics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from braintumor.ood.checks import measure
from braintumor.ood.layout import layout
from braintumor.ood.mahalanobis import MahalanobisScorer, MahalanobisStats
from braintumor.ood.stats import ModelFacts, load_statistics
from braintumor.policies import OOD_POLICIES as POLICIES

log = logging.getLogger(__name__)

NO_STATISTICS = ("no OOD statistics in this model (run `braintumor fit-ood`): the distance "
                 "checks were skipped")
DISABLED_REASON = "check disabled (OOD_POLICY=off)"

_DISTANCE_REASONS = {
    "features": "it is unlike the brain MRI scans the model was trained on",
    "layout": "its layout is unlike a brain MRI slice's (a head in the middle, dark corners)",
}


@dataclass(frozen=True)
class OodDecision:
    """Whether an image is refused as not a brain MRI, and why."""

    flagged: bool
    score: float | None = None
    threshold: float | None = None
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The ``ood`` block of a classify answer."""
        return {
            "flagged": self.flagged,
            "score": None if self.score is None else round(float(self.score), 4),
            "threshold": None if self.threshold is None else round(float(self.threshold), 4),
            "reasons": list(self.reasons),
        }

    def sentence(self) -> str:
        """The reasons as one sentence for an error message."""
        found = [r for r in self.reasons if r not in (NO_STATISTICS, DISABLED_REASON)]
        return "; ".join(found) if found else "it does not look like a brain MRI"


DISABLED = OodDecision(flagged=False, reasons=[DISABLED_REASON])


class OodDetector:
    """The rules for one model; built once when the service starts.

    ``fits`` are the model's fitted statistics by name ("features", "layout") and
    ``scales`` their validation scales (None for a bare model), ``threshold`` the limit of
    the combined score and ``min_confidence`` the confidence limit (None: not used).
    """

    def __init__(self, policy: str = "reject",
                 fits: dict[str, MahalanobisStats] | None = None,
                 scales: dict[str, float] | None = None, threshold: float | None = None,
                 min_confidence: float | None = None) -> None:
        if policy not in POLICIES:
            raise ValueError(f"OOD policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if fits and (threshold is None or scales is None or set(scales) != set(fits)):
            raise ValueError("fitted statistics need a threshold and a scale for each fit")
        self.policy = policy
        self.fits = fits or None
        self.scales = dict(scales or {})
        self.threshold = float(threshold) if threshold is not None else None
        self.min_confidence = min_confidence
        self._scorers: dict[str, MahalanobisScorer] = {
            name: stats.scorer() for name, stats in (fits or {}).items()}

    @classmethod
    def for_model(cls, model: ModelFacts, policy: str = "reject",
                  threshold_override: float | None = None) -> OodDetector:
        """The detector a loaded model's file describes: its statistics are read from the
        model's archive (:mod:`braintumor.ood.stats`, written by
        :mod:`braintumor.training.ood_fit`).
        """
        fits = load_statistics(model)
        description = model.metadata.ood
        if not fits:  # a metadata may still ask for the confidence rule (README)
            min_confidence = description.get("min_confidence")
            return cls(policy, min_confidence=None if min_confidence is None
                       else float(min_confidence))
        scales = {name: float(description["components"][name]["scale"]) for name in fits}
        threshold = threshold_override or float(description["threshold"])
        min_confidence = description.get("min_confidence")
        return cls(policy, fits, scales, threshold,
                   None if min_confidence is None else float(min_confidence))

    @property
    def enabled(self) -> bool:
        return self.policy != "off"

    @property
    def rejects(self) -> bool:
        return self.policy == "reject"

    def input_failures(self, decoded: object) -> dict[str, str]:
        """The input checks that failed, {check: reason}; empty when they pass or the
        policy is off."""
        return measure(decoded).failures() if self.enabled else {}

    def component_scores(self, features: np.ndarray | None,
                         pixels: np.ndarray | None) -> dict[str, np.ndarray]:
        """Each fitted distance of a batch over its scale: {name: (N,)}."""
        vectors = {"features": features,
                   "layout": None if pixels is None else layout(pixels)}
        return {name: scorer.score(vector) / self.scales[name]
                for name, scorer in self._scorers.items()
                if (vector := vectors.get(name)) is not None}

    def scores(self, features: np.ndarray | None, pixels: np.ndarray | None = None
               ) -> np.ndarray | None:
        """Combined scores of a batch (the larger scaled distance), or None without fits."""
        parts = self.component_scores(features, pixels)
        return np.max(list(parts.values()), axis=0) if parts else None

    def decide(self, input_reasons: list[str], probabilities: np.ndarray,
               features: np.ndarray | None = None,
               pixels: np.ndarray | None = None) -> OodDecision:
        """The decision for one image from its input-check reasons and one model pass.

        ``features`` is the image's penultimate feature vector and ``pixels`` its canonical
        uint8 pixels (H, W); either may be None, which skips its distance.
        """
        return self.decide_batch(
            [input_reasons], np.asarray(probabilities)[None],
            None if features is None else np.asarray(features)[None],
            None if pixels is None else np.asarray(pixels)[None])[0]

    def decide_batch(self, input_reasons: list[list[str]], probabilities: np.ndarray,
                     features: np.ndarray | None = None, pixels: np.ndarray | None = None,
                     parts: dict[str, np.ndarray] | None = None) -> list[OodDecision]:
        """:meth:`decide` for a batch: the distances are one matrix product per fit.

        ``parts`` are the batch's :meth:`component_scores` when the caller has them
        already (the evaluation keeps them); otherwise they are computed here.
        """
        if not self.enabled:
            return [DISABLED] * len(input_reasons)
        if parts is None:
            parts = self.component_scores(features, pixels)
        return [self._decision(reasons, probabilities[i],
                               {name: float(values[i]) for name, values in parts.items()})
                for i, reasons in enumerate(input_reasons)]

    def _decision(self, input_reasons: list[str], probabilities: np.ndarray,
                  parts: dict[str, float]) -> OodDecision:
        reasons = list(input_reasons)
        score = max(parts.values(), default=None)
        if score is not None and self.threshold is not None and not score <= self.threshold:
            for name, value in parts.items():
                if not value <= self.threshold:
                    reasons.append(f"{_DISTANCE_REASONS.get(name, name)} (score "
                                   f"{value:.2f}, limit {self.threshold:.2f})")
        confidence = float(np.max(probabilities))
        if self.min_confidence is not None and confidence < self.min_confidence:
            reasons.append(f"the model cannot tell what it is (top probability "
                           f"{100 * confidence:.0f}%, below {100 * self.min_confidence:.0f}%)")
        flagged = bool(reasons)
        if not self.fits:
            reasons.append(NO_STATISTICS)
        return OodDecision(flagged=flagged, score=score, threshold=self.threshold,
                           reasons=reasons)

    def refused_before_model(self, input_reasons: list[str]) -> OodDecision:
        """The decision when the input checks alone refuse (no model pass was made)."""
        return OodDecision(flagged=True, threshold=self.threshold, reasons=list(input_reasons))
