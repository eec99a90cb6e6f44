"""Whole volumes with label maps, answered as uploads to ``/api/classify-series`` are.

``braintumor evaluate-series FOLDER`` reads a volumes folder (``manifest.tsv``: case,
path, kind, sequence, tumour_type, label_path; ``volumes/README.md``), keeps the cases
that :func:`braintumor.training.volumes.case_split` puts on the side asked for (val or
test; "all" reports each side apart, never pooled) and sends every image volume through
the endpoint's own two calls, in-process: :func:`braintumor.series.series_from_parts`
with the file's bytes, then :func:`braintumor.series.classify_series`. The series rule
is the service's, whatever it is when this runs; only its JSON answer is read.

What a reader wants to know, per side:

- per series: tumour volumes called a tumour (sensitivity), healthy volumes called No
  Tumor (specificity), and whether the tumour type is right. A volume refused whole
  counts against both (it is no answer).
- per slice: the false-alarm rate on healthy volumes (slices calling a tumour, i.e. a
  tumour probability of at least :data:`DEFAULT_THRESHOLD` or the answer's own
  threshold, of those the series answer may use: answered and, when the answer says
  which slices were assessed, assessed; the rate over every answered slice is given
  too), and on the tumour-free slices of tumour volumes (no tumour label within
  :data:`~braintumor.training.volumes.CLEAR_MM`).
- tumour-slice sensitivity by the slice's tumour core area (BraTS labels 1 and 4, the
  meningioma's label 1), in :data:`AREA_BINS_CM2`. The label map goes through the same
  slicing as its image (:func:`braintumor.series.nifti.series_from_nifti` with a fixed
  window, as training reads it), so slice k of the label is slice k of the answer.
- the slices not assessed, when the answer has that field (tolerated when absent).
- short series replayed from each volume's answer (:func:`short_series_windows`): every
  run of :data:`SHORT_SERIES_SLICES` slices :data:`SHORT_SERIES_STEP_MM` apart inside
  the volume's assessed levels, judged by the short-series rule (at least two counted
  slices at :data:`~braintumor.series.aggregate.SLICE_THRESHOLD`): the share of a
  healthy volume's such series called a tumour, and of a tumour volume's series with at
  least two tumour slices. What an outside check that sends a few slices per subject
  sees; a replay of the volume's slice answers, not a fresh upload (a short series'
  brain check and assessment may differ).

With ``derived=True`` (``--derived``) each side also gets volumes made from its own
cases (:func:`braintumor.training.volumes.derived_volumes`: the healthy heads
skull-stripped, and that z-scored; the tumour volumes z-scored; their label-free
hemispheres mirrored into healthy whole brains), reported apart under "derived" and
never pooled with the stored files: the folder holds no skull-stripped healthy brain
and no volume normalised inside the brain, kinds outside collections send.

Written into ``--out``: ``report.json``, ``report.md`` (the tables) and one small PNG
per volume: the slices' tumour probability along the volume, tumour slices shaded,
slices not assessed and refused marked, the supporting slices (when the answer lists
them) ringed, the threshold drawn.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.evaluation.series_report import plot_name, plot_volume, render_markdown
from braintumor.evaluation.series_volumes import (
    AREA_BINS_CM2,
    TUMOUR_SLICE_CM2,
    VolumeAnswer,
    answer_volume,
    area_bin,
    bin_labels,
    reaches,
    share,
)
from braintumor.series.aggregate import SLICE_THRESHOLD, supporting_slices
from braintumor.training.volumes import (
    VolumeFile,
    case_split,
    derived_volumes,
    read_manifest,
)

log = logging.getLogger(__name__)

#: The sides of the case split a report may be asked for ("all": each side apart).
CASE_CHOICES = ("test", "val", "all")


#: The short series :func:`short_series_windows` replays: this many slices...
SHORT_SERIES_SLICES = 6
#: ...this far apart (mm; the nearest whole number of the volume's slices).
SHORT_SERIES_STEP_MM = 6.0


def short_series_windows(record: VolumeAnswer, slices: int = SHORT_SERIES_SLICES,
                         step_mm: float = SHORT_SERIES_STEP_MM
                         ) -> list[tuple[bool, int]]:
    """(called a tumour, tumour slices in it) for every short series of ``slices`` slices
    ``step_mm`` apart whose first and last lie within the volume's assessed levels,
    judged as the series endpoint judges a short series: at least min(2, counted) of its
    answered slices at a tumour probability of at least SLICE_THRESHOLD."""
    if record.error is not None or not record.spacing_mm:
        return []
    assessed = record.assessed or [not r for r in record.refused]
    levels = [k for k, a in enumerate(assessed) if a]
    if not levels:
        return []
    step = max(1, round(step_mm / record.spacing_mm))
    strong = [a >= TUMOUR_SLICE_CM2 for a in record.core_cm2] if record.core_cm2 else None
    windows = []
    for first in range(levels[0], levels[-1] - (slices - 1) * step + 1):
        chosen = [first + j * step for j in range(slices)]
        answered = [k for k in chosen if not record.refused[k]
                    and record.probabilities[k] is not None]
        calls = [i for i, k in enumerate(answered)
                 if reaches(record.probabilities[k], SLICE_THRESHOLD)]
        called = bool(answered) and bool(supporting_slices(calls, len(answered), None))
        windows.append((called, sum(strong[k] for k in chosen) if strong else 0))
    return windows


def _short_series(records: Sequence[VolumeAnswer]) -> dict[str, Any]:
    healthy = [w for r in records if r.kind == "healthy" for w in short_series_windows(r)]
    tumour = [w for r in records if r.kind == "tumour" for w in short_series_windows(r)
              if w[1] >= 2]
    healthy_called = sum(c for c, _ in healthy)
    tumour_called = sum(c for c, _ in tumour)
    return {"slices": SHORT_SERIES_SLICES, "step_mm": SHORT_SERIES_STEP_MM,
            "healthy_series": len(healthy), "healthy_called_tumour": healthy_called,
            "healthy_false_alarm_rate": share(healthy_called, len(healthy)),
            "tumour_series": len(tumour), "tumour_called_tumour": tumour_called,
            "tumour_sensitivity": share(tumour_called, len(tumour))}


def side_figures(records: Sequence[VolumeAnswer]) -> dict[str, Any]:
    """The figures of one side of the split (module docstring)."""
    tumour = [r for r in records if r.kind == "tumour"]
    healthy = [r for r in records if r.kind == "healthy"]
    refused = [r for r in records if r.error is not None]
    tumour_called = sum(1 for r in tumour if r.called_tumour)
    healthy_clear = sum(1 for r in healthy if r.called_tumour is False)
    type_right = sum(1 for r in tumour if r.class_right())
    series = {
        "cases": len({r.case for r in records}),
        "volumes": len(records),
        "tumour_volumes": len(tumour),
        "tumour_volumes_called_tumour": tumour_called,
        "sensitivity": share(tumour_called, len(tumour)),
        "tumour_type_right": type_right,
        "tumour_type_right_share": share(type_right, len(tumour)),
        "healthy_volumes": len(healthy),
        "healthy_volumes_called_no_tumour": healthy_clear,
        "specificity": share(healthy_clear, len(healthy)),
        "refused_whole": len(refused),
    }
    used = sum(sum(r.used()) for r in healthy)
    answered = sum(sum(not x for x in r.refused) for r in healthy)
    alarms = sum(sum(r.called()) for r in healthy)
    alarms_answered = sum(sum(r.called_answered()) for r in healthy)
    clear_used = clear_called = 0
    for r in tumour:
        for is_clear, use, call in zip(r.clear(), r.used(), r.called(), strict=True):
            clear_used += is_clear and use
            clear_called += is_clear and call
    bins: list[dict[str, Any]] = [{"bin": label, "slices": 0, "assessed": 0, "refused": 0,
                                   "called_tumour": 0} for label in bin_labels()]
    for r in tumour:
        if r.core_cm2 is None or r.error is not None:
            continue
        assessed = r.assessed or [True] * r.slice_count
        for area, ref, ass, call in zip(r.core_cm2, r.refused, assessed, r.called(),
                                        strict=True):
            index = area_bin(area)
            if index is None:
                continue
            entry = bins[index]
            entry["slices"] += 1
            entry["assessed"] += int(ass and not ref)
            entry["refused"] += int(ref)
            entry["called_tumour"] += int(call)
    for entry in bins:
        entry["sensitivity"] = share(entry["called_tumour"], entry["slices"])
        entry["sensitivity_of_assessed"] = share(entry["called_tumour"], entry["assessed"])
    big = [e for e, edge in zip(bins, (*AREA_BINS_CM2,), strict=True)
           if edge >= TUMOUR_SLICE_CM2]
    big_slices = sum(e["slices"] for e in big)
    big_called = sum(e["called_tumour"] for e in big)
    total = sum(r.slice_count for r in records)
    known = [r for r in records if r.assessed is not None]
    slices = {
        "healthy_slices": sum(r.slice_count for r in healthy),
        "healthy_slices_answered": answered,
        "healthy_slices_used": used,
        "healthy_slices_called_tumour": alarms,
        "false_alarm_rate": share(alarms, used),
        "false_alarm_rate_answered": share(alarms_answered, answered),
        "tumour_free_slices_of_tumour_volumes": clear_used,
        "tumour_free_slices_called_tumour": clear_called,
        "tumour_free_false_alarm_rate": share(clear_called, clear_used),
        f"tumour_slices_from_{TUMOUR_SLICE_CM2:g}_cm2": big_slices,
        f"tumour_slices_from_{TUMOUR_SLICE_CM2:g}_cm2_called_tumour": big_called,
        "tumour_slice_sensitivity": share(big_called, big_slices),
        "by_core_area": bins,
        "slices": total,
        "slices_refused": sum(sum(r.refused) for r in records),
        "assessment_in_answer": bool(known),
        "slices_not_assessed": (sum(r.not_assessed() for r in known) if known else None),
    }
    by_sequence: dict[str, dict[str, int]] = {}
    for r in records:
        entry = by_sequence.setdefault(" ".join(filter(None, (r.kind, r.sequence,
                                                             r.variant))),
                                       {"volumes": 0, "called_tumour": 0, "refused": 0})
        entry["volumes"] += 1
        entry["called_tumour"] += int(bool(r.called_tumour))
        entry["refused"] += int(r.error is not None)
    return {"series": series, "slices": slices, "by_sequence": by_sequence,
            "short_series": _short_series(records)}


def _by_side(records: Sequence[VolumeAnswer], sides: Sequence[str], derived: bool
             ) -> dict[str, dict[str, Any]]:
    """Each side's figures over the stored files, or (``derived``) over the derived
    versions alone: the two are never pooled."""
    return {side: side_figures([r for r in records
                                if r.split == side and bool(r.variant) == derived])
            for side in sides}


def select_volumes(root: Path, cases: str, derived: bool = False) -> list[VolumeFile]:
    """The image volumes of the chosen cases, then (``derived``) their derived versions."""
    if cases not in CASE_CHOICES:
        raise ValueError(f"cases must be one of {', '.join(CASE_CHOICES)}, not {cases!r}")
    files = read_manifest(root)
    chosen = [f for f in files if cases == "all" or case_split(f.case) == cases]
    return chosen + (derived_volumes(chosen) if derived else [])


def evaluate_series(classifier: Classifier, settings: Settings, root: Path, out_dir: Path,
                    cases: str = "test", model_path: Path | None = None,
                    derived: bool = False) -> dict[str, Any]:
    """Answer every image volume of the chosen cases; write and return the report."""
    started = time.perf_counter()
    root, out_dir = Path(root), Path(out_dir)
    files = select_volumes(root, cases, derived)
    if not files:
        raise ValueError(f"no image volume of the {cases} cases in {root / 'manifest.tsv'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for item in files:
        record = answer_volume(classifier, settings, root, item)
        plot_volume(record, out_dir / plot_name(record))
        log.info("%s: %s in %.1f s", record.path, record.series_class or record.error_code,
                 record.seconds)
        records.append(record)
    sides = [s for s in ("train", "val", "test") if any(r.split == s for r in records)]
    model = classifier.model
    report: dict[str, Any] = {
        "folder": str(root),
        "cases": cases,
        "model": {"path": str(model_path or model.path), "version": model.metadata.version,
                  "architecture": model.metadata.architecture},
        "ood_policy": settings.OOD_POLICY,
        "rule": next((r.rule for r in records if r.rule), None),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "area_bins_cm2": list(AREA_BINS_CM2),
        "sides": _by_side(records, sides, derived=False),
        "volumes": [{**asdict(r), "plot": plot_name(r), "class_right": r.class_right()}
                    for r in records],
    }
    if derived:
        report["derived"] = _by_side(records, sides, derived=True)
    if "train" in sides:
        report["note"] = ("the train cases were trained on: their figures say nothing about "
                          "new scans")
    report["seconds"] = round(time.perf_counter() - started, 2)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report, records))
    return report


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """What the command prints: each side's headline figures."""
    out: dict[str, Any] = {}
    groups = [*report["sides"].items(),
              *((f"{side} derived", f) for side, f in report.get("derived", {}).items())]
    for side, figures in groups:
        s, sl = figures["series"], figures["slices"]
        out[side] = {
            "cases": s["cases"], "volumes": s["volumes"],
            "series_sensitivity": s["sensitivity"],
            "series_specificity": s["specificity"],
            "tumour_type_right": s["tumour_type_right_share"],
            "refused_whole": s["refused_whole"],
            "slice_false_alarm_rate": sl["false_alarm_rate"],
            "slice_false_alarm_rate_answered": sl["false_alarm_rate_answered"],
            "tumour_free_false_alarm_rate": sl["tumour_free_false_alarm_rate"],
            "tumour_slice_sensitivity": sl["tumour_slice_sensitivity"],
            "by_core_area": {b["bin"]: b["sensitivity"] for b in sl["by_core_area"]},
            "slices_not_assessed": sl["slices_not_assessed"],
            "short_series_false_alarm_rate": figures["short_series"][
                "healthy_false_alarm_rate"],
            "short_series_tumour_sensitivity": figures["short_series"]["tumour_sensitivity"],
        }
    return {"summary": out, "seconds": report["seconds"]}
