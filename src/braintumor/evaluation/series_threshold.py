"""A model's own volume threshold, chosen on the validation volumes
(``braintumor fit-series-threshold``).

Why per model: the series rule (:mod:`braintumor.series.aggregate`) asks a volume's
slices for a firm call, but how firm a call is depends on the slice model: one trained on
whole heads rarely passes 0.7 on healthy anatomy, another passes 0.9 on a healthy
vertex. The threshold is therefore chosen for each model on the volumes' validation
cases (:func:`braintumor.training.volumes.case_split`; never the test cases) and written
into its metadata (``series.volume_slice_threshold``), which the series endpoint reads.

The choice: replay the rule's support step (:func:`~braintumor.series.aggregate.
supporting_slices`) on each validation volume's answered slices at every
:data:`CANDIDATES` threshold; keep the thresholds with the best balanced accuracy over
volumes (healthy heads answered No Tumor, tumour volumes called a tumour; a volume
refused whole counts against it), and of those the lowest (the most sensitive) at which
the healthy volumes' counted slices call a tumour at most :data:`SLICE_FALSE_ALARM_RATE`
of the time. A handful of validation volumes is often answered right at every
threshold; the slice rate then still tells the thresholds apart, and it is what decides
how a healthy volume of another collection fares: the support step absorbs a stray
false alarm, not one slice in twenty. When no threshold of the best balanced accuracy
meets the rate, the one with the fewest false alarms is taken.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.evaluation.series_eval import select_volumes
from braintumor.evaluation.series_volumes import VolumeAnswer, answer_volume, reaches
from braintumor.model.metadata import replace_metadata
from braintumor.series.aggregate import VOLUME_MIN_ASSESSED, supporting_slices

log = logging.getLogger(__name__)

#: The thresholds tried, as tumour probabilities.
CANDIDATES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
#: The most the healthy validation volumes' counted slices may call a tumour at the
#: chosen threshold (a share of those slices).
SLICE_FALSE_ALARM_RATE = 0.01


def volume_call(record: VolumeAnswer, threshold: float) -> bool | None:
    """Whether the rule at ``threshold`` calls this volume a tumour; None when the answer
    is no volume answer (refused whole, no slice spacing, too few counted slices)."""
    if record.error is not None or not record.spacing_mm:
        return None
    used = record.used()
    counted = sum(used)
    if counted < VOLUME_MIN_ASSESSED:
        return None
    calls = [i for i, (u, p) in enumerate(zip(used, record.probabilities, strict=True))
             if u and reaches(p, threshold)]
    return bool(supporting_slices(calls, counted, record.spacing_mm))


def threshold_table(records: Sequence[VolumeAnswer],
                    candidates: Sequence[float] = CANDIDATES) -> list[dict[str, Any]]:
    """Per candidate threshold: healthy heads answered No Tumor, tumour volumes called a
    tumour, and the balanced accuracy of the two."""
    healthy = [r for r in records if r.kind == "healthy"]
    tumours = [r for r in records if r.kind == "tumour"]
    counted = [p for r in healthy if r.error is None
               for u, p in zip(r.used(), r.probabilities, strict=True) if u and p is not None]
    rows = []
    for threshold in candidates:
        right = sum(volume_call(r, threshold) is False for r in healthy)
        called = sum(volume_call(r, threshold) is True for r in tumours)
        parts = [right / len(healthy)] if healthy else []
        parts += [called / len(tumours)] if tumours else []
        alarms = sum(reaches(p, threshold) for p in counted)
        rows.append({"threshold": threshold, "healthy": len(healthy),
                     "healthy_no_tumour": right, "tumours": len(tumours),
                     "tumours_called": called,
                     "balanced_accuracy": round(sum(parts) / max(len(parts), 1), 4),
                     "healthy_slices": len(counted), "healthy_slices_called": alarms,
                     "slice_false_alarm_rate": round(alarms / len(counted), 4)
                     if counted else None})
    return rows


def choose_threshold(rows: Sequence[dict[str, Any]],
                     false_alarm_rate: float = SLICE_FALSE_ALARM_RATE) -> float:
    """The lowest threshold of those with the best balanced accuracy whose healthy slices'
    false-alarm rate is at most ``false_alarm_rate`` (module docstring)."""
    def rate(row: dict[str, Any]) -> float:  # no healthy slice: nothing to hold it to
        return row.get("slice_false_alarm_rate") or 0.0

    best = max(row["balanced_accuracy"] for row in rows)
    tied = [row for row in rows if row["balanced_accuracy"] == best]
    within = [row for row in tied if rate(row) <= false_alarm_rate]
    if within:
        return min(row["threshold"] for row in within)
    fewest = min(rate(row) for row in tied)
    return min(row["threshold"] for row in tied if rate(row) == fewest)


def fit_series_threshold(classifier: Classifier, settings: Settings, root: Path,
                         model_path: Path, out: Path | None = None,
                         derived: bool = False) -> dict[str, Any]:
    """Answer the validation volumes, choose the threshold, write it into the model's
    metadata (``out``: a copy instead of the model in place); returns what was written.

    ``derived``: the validation cases' derived volumes count too
    (:func:`braintumor.training.volumes.derived_volumes`), so the choice also sees
    skull-stripped healthy brains and z-scored volumes."""
    files = select_volumes(Path(root), "val", derived)
    if not files:
        raise ValueError(f"no validation volume in {Path(root) / 'manifest.tsv'}")
    records = []
    for item in files:
        records.append(answer_volume(classifier, settings, Path(root), item))
        log.info("%s answered in %.1f s", records[-1].path, records[-1].seconds)
    rows = threshold_table(records)
    metadata = copy.deepcopy(classifier.model.metadata)
    metadata.series = {
        "volume_slice_threshold": choose_threshold(rows),
        "slice_false_alarm_rate": SLICE_FALSE_ALARM_RATE,
        "chosen_on": f"{len(records)} validation volumes of {Path(root).name} "
                     "(training.volumes.case_split)"
                     + (f", {sum(bool(r.variant) for r in records)} of them derived "
                        "versions (training.volumes.derived_volumes)"
                        if derived else ""),
        "candidates": rows,
    }
    replace_metadata(Path(model_path), metadata, out)
    return metadata.series
