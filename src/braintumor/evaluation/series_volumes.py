"""One volume's series answer, slice by slice, with its label map's truth: the records
``braintumor evaluate-series`` (:mod:`braintumor.evaluation.series_eval`) reports on."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.classes import is_no_tumour
from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.errors import BrainTumorError
from braintumor.series import classify_series, series_from_parts
from braintumor.training.volumes import (
    CLEAR_MM,
    VolumeFile,
    case_split,
    coded_label_slices,
    coded_labels,
    displayed_pixel_mm2,
    volume_bytes,
)

log = logging.getLogger(__name__)

#: Edges of the tumour core area bins, cm2 of one slice; the last bin is open.
AREA_BINS_CM2 = (0.0, 1.0, 2.0, 5.0, 10.0)
#: A slice counts as a tumour slice (for the shading and the "tumour slices" counts) from
#: this core area on, cm2: training's own threshold (``MIN_TUMOUR_MM2``).
TUMOUR_SLICE_CM2 = 1.0
#: A slice calls a tumour when its tumour probability (1 - P(No Tumor), percent) is at
#: least the threshold: the answer's own (``summary.slice_threshold``) when it states one,
#: else this, the series rule's (``series.aggregate.SLICE_THRESHOLD``).
DEFAULT_THRESHOLD = 50.0
#: Summary keys an answer may give its slice threshold under (percent or a fraction).
_THRESHOLD_KEYS = ("slice_threshold", "tumour_threshold", "threshold")
#: Summary keys an answer may list its not-assessed slice indices under.
_NOT_ASSESSED_KEYS = ("not_assessed", "not_assessed_slices", "slices_not_assessed")


def reaches(probability: float | None, threshold: float) -> bool:
    """Whether a slice's tumour probability (percent) reaches ``threshold`` (a fraction),
    as the series rule compares them."""
    return probability is not None and probability >= 100.0 * threshold - 1e-6


def bin_labels() -> list[str]:
    edges = AREA_BINS_CM2
    labels = [f"{low:g}-{high:g} cm2" for low, high in pairwise(edges)]
    labels[0] = f"< {edges[1]:g} cm2"
    return [*labels, f">= {edges[-1]:g} cm2"]


def area_bin(cm2: float) -> int | None:
    """The bin of a slice's core area; None for a slice without tumour core."""
    if cm2 <= 0:
        return None
    return int(np.searchsorted(np.asarray(AREA_BINS_CM2[1:]), cm2, side="right"))


@dataclass
class VolumeAnswer:
    """One image volume: what the service answered, slice by slice, and the truth."""

    case: str
    split: str
    path: str  # relative to the volumes folder
    kind: str  # healthy | tumour
    sequence: str
    tumour_type: str
    #: "" for the file as stored, else the version sent (``VolumeFile.variant``).
    variant: str = ""
    #: The whole volume's refusal or error message; None when answered.
    error: str | None = None
    error_code: str | None = None
    series_class: str | None = None
    called_tumour: bool | None = None
    tumour_probability: float | None = None  # percent, the series'
    key_slice: int | None = None
    rule: str | None = None
    threshold: float = DEFAULT_THRESHOLD  # percent, drawn in the plot
    threshold_stated: bool = False
    spacing_mm: float | None = None
    positions: list[float | None] = field(default_factory=list)
    classes: list[str | None] = field(default_factory=list)
    probabilities: list[float | None] = field(default_factory=list)  # tumour, percent
    refused: list[bool] = field(default_factory=list)
    #: Per slice, whether the answer assessed it; None when the answer does not say.
    assessed: list[bool] | None = None
    #: The slices the answer says support its tumour call; None when it does not say.
    supporting: list[int] | None = None
    #: Per slice, the tumour core area in cm2 (tumour volumes with a label map).
    core_cm2: list[float] | None = None
    #: Per slice, whether any tumour label (oedema included) is in it.
    any_label: list[bool] | None = None
    seconds: float = 0.0

    @property
    def slice_count(self) -> int:
        return len(self.classes)

    def used(self) -> list[bool]:
        """Slices the series answer may use: answered and (when known) assessed."""
        assessed = self.assessed or [True] * self.slice_count
        return [not r and a for r, a in zip(self.refused, assessed, strict=True)]

    def not_assessed(self) -> int:
        """Answered slices the answer did not assess (refused ones are counted apart)."""
        if self.assessed is None:
            return 0
        return sum(not r and not a for r, a in zip(self.refused, self.assessed, strict=True))

    def calls(self) -> list[bool]:
        """Answered slices whose tumour probability reaches the threshold (what the
        series rule calls a slice's tumour call), assessed or not."""
        return [not r and p is not None and p >= self.threshold
                for r, p in zip(self.refused, self.probabilities, strict=True)]

    def called(self) -> list[bool]:
        """Slices that speak for a tumour: used, and calling a tumour."""
        return [u and c for u, c in zip(self.used(), self.calls(), strict=True)]

    def called_answered(self) -> list[bool]:
        """Answered slices calling a tumour, assessed or not."""
        return self.calls()

    def clear(self) -> list[bool]:
        """Tumour-free slices of a tumour volume: no label within CLEAR_MM."""
        if self.any_label is None:
            return [False] * self.slice_count
        near = max(1, round(CLEAR_MM / (self.spacing_mm or 1.0)))
        labelled = np.asarray(self.any_label, dtype=bool)
        return [not labelled[max(0, k - near):k + near + 1].any()
                for k in range(self.slice_count)]

    def class_right(self) -> bool | None:
        """Whether the series class is the volume's tumour type (or No Tumor)."""
        if self.series_class is None:
            return None
        if self.kind == "healthy":
            return is_no_tumour(self.series_class)
        return self.tumour_type.split()[0].lower() in self.series_class.lower()


def _assessed_flags(body: dict[str, Any]) -> list[bool] | None:
    """Per slice, whether the answer assessed it: its slices' ``assessed`` field or a
    summary list of not-assessed indices; None when the answer has neither."""
    slices = body.get("slices") or []
    if slices and all("assessed" in s for s in slices):
        return [bool(s["assessed"]) for s in slices]
    summary = body.get("summary") or {}
    for key in _NOT_ASSESSED_KEYS:
        value = summary.get(key)
        if isinstance(value, list):
            skipped = {int(i) for i in value}
            return [s.get("index", k) not in skipped for k, s in enumerate(slices)]
    return None


def _threshold(summary: dict[str, Any]) -> float | None:
    for key in _THRESHOLD_KEYS:
        value = summary.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) * (100.0 if value <= 1.0 else 1.0)
    return None


def read_answer(record: VolumeAnswer, body: dict[str, Any]) -> None:
    """Fill ``record`` from a series answer's JSON."""
    summary = body["summary"]
    slices = body["slices"]
    record.series_class = summary["class"]
    record.called_tumour = not is_no_tumour(summary["class"])
    record.tumour_probability = summary.get("tumour_probability")
    record.key_slice = summary.get("key_slice")
    record.rule = summary.get("rule")
    stated = _threshold(summary)
    if stated is not None:
        record.threshold, record.threshold_stated = stated, True
    record.spacing_mm = (body.get("series") or {}).get("slice_spacing_mm")
    record.positions = [s.get("position") for s in slices]
    record.classes = [s.get("class") for s in slices]
    record.probabilities = [s.get("tumour_probability") for s in slices]
    record.refused = [bool(s.get("refused")) for s in slices]
    record.assessed = _assessed_flags(body)
    supporting = summary.get("supporting_slices")
    record.supporting = [int(i) for i in supporting] if isinstance(supporting, list) else None


def label_slices(item: VolumeFile) -> tuple[list[float], list[bool]]:
    """(tumour core area in cm2, any tumour label) per slice of ``item``'s label map, in
    the order the service slices its image."""
    import nibabel as nib

    if item.label_path is None:
        raise ValueError(f"{item.case}: a tumour volume without a label map")
    label_image: Any = nib.load(str(item.label_path))
    codes = coded_label_slices(coded_labels(np.asarray(label_image.dataobj),
                                            item.tumour_type), label_image.affine)
    pixel_cm2 = displayed_pixel_mm2(label_image) / 100.0
    return ([round(float((c > 191).sum()) * pixel_cm2, 3) for c in codes],
            [bool((c > 0).any()) for c in codes])


def answer_volume(classifier: Classifier, settings: Settings, root: Path,
                  item: VolumeFile) -> VolumeAnswer:
    """One image volume through the endpoint's path, with its label map's slices."""
    path = str(item.path.relative_to(root) if item.path.is_relative_to(root) else item.path)
    record = VolumeAnswer(case=item.case, split=case_split(item.case),
                          path=f"{path}#{item.variant}" if item.variant else path,
                          kind=item.kind, sequence=item.sequence,
                          tumour_type=item.tumour_type, variant=item.variant)
    started = time.perf_counter()
    try:
        volume = series_from_parts([(item.path.name, volume_bytes(item))], settings)
        body = classify_series(classifier, volume).to_json()
    except BrainTumorError as exc:  # refused whole, or not a volume the service reads
        record.error, record.error_code = exc.message, exc.code
        log.warning("%s: %s", record.path, exc.message)
    else:
        read_answer(record, body)
    record.seconds = round(time.perf_counter() - started, 2)
    if item.kind == "tumour" and item.label_path is not None:
        record.core_cm2, record.any_label = label_slices(item)
        if record.error is None and len(record.core_cm2) != record.slice_count:
            raise ValueError(f"{item.label_path} has {len(record.core_cm2)} slices, its "
                             f"image {record.slice_count}")
    return record



def share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)

