"""A checked series -> per-slice answers, the series' answer, and the key slice explained.

Every slice goes through :meth:`braintumor.classify.Classifier.assess`, the path
``/api/classify`` takes (input checks, one batched model pass with Grad-CAM, the
not-a-brain-MRI decision), :data:`BATCH` slices at a time: only one batch of decoded
pictures is held at once, and per slice only its probabilities, decision and small
Grad-CAM map are kept, with a reduced copy of the picture for its brain area
(:mod:`braintumor.series.assess`: which slices show enough brain to be judged). The
key slice is decoded once more to render its three pictures
(and, for a segmenting model, its ``localization``) exactly as ``/api/classify`` renders
an upload, through the framing its model input was made with.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from braintumor.classes import no_tumour_index
from braintumor.classify import Assessment, Classifier, Prediction, percentages, utc_timestamp
from braintumor.errors import ClassificationError, NotBrainMRIError
from braintumor.explain.localize import Localization
from braintumor.series.aggregate import SeriesSummary, aggregate
from braintumor.series.assess import MIN_BRAIN_CM2, BrainAreas, assessed_slices
from braintumor.series.volume import SeriesVolume

#: Slices per model pass: large enough to amortise the call, small enough to bound memory.
BATCH = 32


@dataclass
class SliceAnswer:
    index: int
    position: float | None
    assessment: Assessment
    dicom: Any = None  # the slice's DicomInfo, for the key slice's "dicom" block
    #: Brain area in cm2 (None without a pixel spacing) and whether the slice is assessed.
    brain_area_cm2: float | None = None
    assessed: bool = False

    @property
    def answered(self) -> bool:
        return self.assessment.probabilities is not None and not self.assessment.refused


@dataclass
class SeriesResult:
    volume: SeriesVolume
    slices: list[SliceAnswer]
    summary: SeriesSummary
    class_names: list[str]
    #: The key slice's three pictures, PNG-encoded.
    pngs: dict[str, bytes]
    processing_time_ms: float
    #: The key slice's tumour outline, for a model with a segmentation output.
    localization: Localization | None = None

    def _tumour(self, probabilities: np.ndarray) -> float | None:
        index = no_tumour_index(self.class_names)
        if index is None:
            return None
        return round(100.0 * (1.0 - float(probabilities[index])), 2)

    def _slice_json(self, answer: SliceAnswer) -> dict[str, Any]:
        body: dict[str, Any] = {"index": answer.index, "position": answer.position,
                                "refused": not answer.answered}
        probs = answer.assessment.probabilities
        if answer.answered and probs is not None:
            body.update(Prediction(self.class_names, probs).to_json())
            body["tumour_probability"] = self._tumour(probs)
        else:
            body.update({"class": None, "class_id": None, "confidence": None,
                         "probabilities": None, "tumour_probability": None})
        body["ood"] = answer.assessment.ood.to_json() if answer.assessment.ood else None
        body["assessed"] = answer.assessed
        body["brain_area_cm2"] = answer.brain_area_cm2
        return body

    def key_slice(self) -> SliceAnswer:
        return self.slices[self.summary.key_index]

    def to_json(self) -> dict[str, Any]:
        summary = self.summary
        pct = percentages(summary.probabilities)
        key = self.key_slice()
        key_body = self._slice_json(key)
        key_body["visualization"] = {name: base64.b64encode(png).decode("ascii")
                                     for name, png in self.pngs.items()}
        if key.dicom is not None:
            key_body["dicom"] = key.dicom.to_json()
        if self.localization is not None:
            key_body["localization"] = self.localization.to_json()
        return {
            "success": True,
            "series": self.volume.to_json(),
            "slices": [self._slice_json(answer) for answer in self.slices],
            "summary": {
                "class": self.class_names[summary.class_id],
                "class_id": summary.class_id,
                "confidence": pct[summary.class_id],
                "probabilities": dict(zip(self.class_names, pct, strict=True)),
                "tumour_probability": (None if summary.tumour_probability is None
                                       else round(100.0 * summary.tumour_probability, 2)),
                "slices_answered": summary.answered,
                "slices_refused": summary.refused,
                "class_counts": dict(zip(self.class_names,
                                         (int(n) for n in summary.class_counts),
                                         strict=True)),
                "key_slice": summary.key_index,
                "rule": summary.rule,
                "slice_threshold": round(100.0 * summary.threshold, 2),
                "assessed_slices": len(summary.assessed),
                "not_assessed": list(summary.not_assessed),
                "supporting_slices": list(summary.supporting),
            },
            "key_slice": key_body,
            "processing_time_ms": round(self.processing_time_ms, 2),
            "timestamp": utc_timestamp(),
        }


def _refusal(answers: list[SliceAnswer]) -> NotBrainMRIError:
    """No slice answered: the series is not diagnosed; say why for the middle slice."""
    middle = answers[len(answers) // 2].assessment.ood
    why = middle.sentence() if middle is not None else "it does not look like a brain MRI"
    count = len(answers)
    return NotBrainMRIError(
        f"None of the series' {count} slice{'s' if count != 1 else ''} looks like a brain "
        f"MRI, so the series was not classified (slice {answers[len(answers) // 2].index}: "
        f"{why}). Please send a brain MRI series.")


def _nothing_assessed(answers: list[SliceAnswer], spacing_known: bool) -> NotBrainMRIError:
    """Slices answered, none showing enough brain: no diagnosis rests on such slices."""
    count = sum(1 for a in answers if a.answered)
    need = (f"at least {MIN_BRAIN_CM2:g} cm2 of brain" if spacing_known
            else "enough brain")
    return NotBrainMRIError(
        f"None of the series' {count} answered slice{'s' if count != 1 else ''} shows "
        f"{need} to be assessed (vertex, skull base, neck or outside the head), so the "
        "series was not classified. Please send a series through the brain.")


def classify_series(classifier: Classifier, volume: SeriesVolume,
                    started: float | None = None) -> SeriesResult:
    """Assess every slice in batches, aggregate, and explain the key slice."""
    started = time.perf_counter() if started is None else started
    answers: list[SliceAnswer] = []
    pixel_mm = volume.pixel_mm
    brains = BrainAreas(pixel_mm)
    for first in range(0, len(volume.slices), BATCH):
        batch = volume.slices[first:first + BATCH]
        decoded = [item.load() for item in batch]
        for image in decoded:
            brains.add(image.grey)
        assessments = classifier.assess(decoded, explain=True)
        for offset, (item, image, assessment) in enumerate(
                zip(batch, decoded, assessments, strict=True)):
            if assessment.error is not None:
                raise assessment.error
            answers.append(SliceAnswer(first + offset, item.position, assessment,
                                       image.dicom))
        del decoded
    areas = brains.areas(volume.spacing_mm)
    flags = assessed_slices(areas, spacing_known=pixel_mm is not None)
    for answer, area, flag in zip(answers, areas, flags, strict=True):
        answer.brain_area_cm2 = area if pixel_mm is not None else None
        answer.assessed = flag and answer.answered
    summary = aggregate([a.assessment.probabilities if a.answered else None
                         for a in answers], classifier.class_names,
                        assessed=[a.assessed for a in answers],
                        spacing_mm=volume.spacing_mm,
                        volume_threshold=classifier.model.metadata.series.get(
                            "volume_slice_threshold"))
    if summary is None:
        if any(a.answered for a in answers):
            raise _nothing_assessed(answers, pixel_mm is not None)
        raise _refusal(answers)
    key = answers[summary.key_index]
    if key.assessment.cam is None:  # assess(explain=True) maps every answered slice
        raise ClassificationError("The model gave no Grad-CAM map for the key slice")
    picture = volume.slices[summary.key_index].load()
    visualization, localization = classifier.explained(key.assessment, picture)
    return SeriesResult(
        volume=volume, slices=answers, summary=summary,
        class_names=classifier.class_names, pngs=visualization.png_bytes(),
        processing_time_ms=(time.perf_counter() - started) * 1000.0,
        localization=localization,
    )
