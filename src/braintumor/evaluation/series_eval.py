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

Written into ``--out``: ``report.json``, ``report.md`` (the tables) and one small PNG
per volume: the slices' tumour probability along the volume, tumour slices shaded,
slices not assessed and refused marked, the supporting slices (when the answer lists
them) ringed, the threshold drawn.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.classes import is_no_tumour
from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.errors import BrainTumorError
from braintumor.series import classify_series, series_from_parts
from braintumor.series.nifti import series_from_nifti
from braintumor.training.volumes import CLEAR_MM, VolumeFile, case_split, read_manifest

log = logging.getLogger(__name__)

#: The sides of the case split a report may be asked for ("all": each side apart).
CASE_CHOICES = ("test", "val", "all")
#: Edges of the tumour core area bins, cm2 of one slice; the last bin is open.
AREA_BINS_CM2 = (0.0, 1.0, 2.0, 5.0, 10.0)
#: Label values of the tumour core by tumour type (BraTS: 1 necrotic/non-enhancing
#: core, 4 enhancing; the meningioma mask: 1).
CORE_LABELS = {"glioma": (1, 4), "meningioma": (1,)}
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


def _pixel_mm2(image: Any) -> float:
    """Area of one displayed pixel: the finer in-plane voxel size squared (the NIfTI
    reader resamples an anisotropic plane to its finer spacing)."""
    import nibabel as nib

    ornt = nib.io_orientation(image.affine)
    zooms = image.header.get_zooms()
    in_plane = [float(zooms[v]) for v, (w, _) in enumerate(ornt) if int(w) != 2]
    return min(in_plane) ** 2


def label_slices(item: VolumeFile) -> tuple[list[float], list[bool]]:
    """(tumour core area in cm2, any tumour label) per slice of ``item``'s label map, in
    the order the service slices its image."""
    import nibabel as nib

    if item.label_path is None:
        raise ValueError(f"{item.case}: a tumour volume without a label map")
    label_image: Any = nib.load(str(item.label_path))
    values = np.asarray(label_image.dataobj)
    core = CORE_LABELS["glioma" if "glioma" in item.tumour_type.lower() else "meningioma"]
    coded = np.where(np.isin(values, core), 2.0, np.where(values > 0, 1.0, 0.0))
    data = bytes(nib.Nifti1Image(coded.astype(np.float32), label_image.affine).to_bytes())
    volume = series_from_nifti(data, max_slices=100_000, max_bytes=2 ** 31,
                               max_pixels=10 ** 8, window=(0.0, 2.0))
    pixel_cm2 = _pixel_mm2(label_image) / 100.0
    codes = [np.asarray(s.load().grey, dtype=np.uint8) for s in volume.slices]
    return ([round(float((c > 191).sum()) * pixel_cm2, 3) for c in codes],
            [bool((c > 0).any()) for c in codes])


def answer_volume(classifier: Classifier, settings: Settings, root: Path,
                  item: VolumeFile) -> VolumeAnswer:
    """One image volume through the endpoint's path, with its label map's slices."""
    record = VolumeAnswer(case=item.case, split=case_split(item.case),
                          path=str(item.path.relative_to(root) if item.path.is_relative_to(root)
                                   else item.path), kind=item.kind,
                          sequence=item.sequence, tumour_type=item.tumour_type)
    started = time.perf_counter()
    try:
        volume = series_from_parts([(item.path.name, item.path.read_bytes())], settings)
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


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


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
        "sensitivity": _share(tumour_called, len(tumour)),
        "tumour_type_right": type_right,
        "tumour_type_right_share": _share(type_right, len(tumour)),
        "healthy_volumes": len(healthy),
        "healthy_volumes_called_no_tumour": healthy_clear,
        "specificity": _share(healthy_clear, len(healthy)),
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
        entry["sensitivity"] = _share(entry["called_tumour"], entry["slices"])
        entry["sensitivity_of_assessed"] = _share(entry["called_tumour"], entry["assessed"])
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
        "false_alarm_rate": _share(alarms, used),
        "false_alarm_rate_answered": _share(alarms_answered, answered),
        "tumour_free_slices_of_tumour_volumes": clear_used,
        "tumour_free_slices_called_tumour": clear_called,
        "tumour_free_false_alarm_rate": _share(clear_called, clear_used),
        f"tumour_slices_from_{TUMOUR_SLICE_CM2:g}_cm2": big_slices,
        f"tumour_slices_from_{TUMOUR_SLICE_CM2:g}_cm2_called_tumour": big_called,
        "tumour_slice_sensitivity": _share(big_called, big_slices),
        "by_core_area": bins,
        "slices": total,
        "slices_refused": sum(sum(r.refused) for r in records),
        "assessment_in_answer": bool(known),
        "slices_not_assessed": (sum(r.not_assessed() for r in known) if known else None),
    }
    by_sequence: dict[str, dict[str, int]] = {}
    for r in records:
        entry = by_sequence.setdefault(f"{r.kind} {r.sequence}",
                                       {"volumes": 0, "called_tumour": 0, "refused": 0})
        entry["volumes"] += 1
        entry["called_tumour"] += int(bool(r.called_tumour))
        entry["refused"] += int(r.error is not None)
    return {"series": series, "slices": slices, "by_sequence": by_sequence}


def plot_volume(record: VolumeAnswer, path: Path) -> None:
    """The slices' tumour probability against slice position (module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = record.slice_count
    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=100)
    if count == 0:  # refused whole: nothing to draw but why
        ax.axis("off")
        ax.text(0.5, 0.5, f"{record.case} {record.sequence} [{record.split}]: refused "
                f"({record.error_code})\n{record.error or ''}", ha="center", va="center",
                fontsize=7, wrap=True, transform=ax.transAxes)
        fig.savefig(path)
        plt.close(fig)
        return
    positions = [p if p is not None else float(k) for k, p in enumerate(record.positions)]
    x = np.asarray(positions, dtype=np.float64)
    y = np.array([np.nan if p is None else p for p in record.probabilities], dtype=np.float64)
    step = float(np.median(np.abs(np.diff(x)))) if count > 1 else 1.0
    if record.core_cm2 is not None:
        for k, area in enumerate(record.core_cm2):
            if area > 0:
                strong = area >= TUMOUR_SLICE_CM2
                ax.axvspan(x[k] - step / 2, x[k] + step / 2, color="#d62728",
                           alpha=0.28 if strong else 0.1, linewidth=0)
    ax.plot(x, y, color="#1f77b4", linewidth=1.0, label="tumour probability")
    called = np.asarray(record.called(), dtype=bool)
    if called.any():
        ax.scatter(x[called], y[called], s=9, color="#d62728", zorder=3,
                   label="slice called a tumour")
    if record.assessed is not None:
        skipped = np.array([not a for a in record.assessed], dtype=bool)
        if skipped.any():
            ax.scatter(x[skipped], np.full(int(skipped.sum()), -4.0), marker="|", s=30,
                       color="#7f7f7f", label="not assessed", clip_on=False)
    refused = np.asarray(record.refused, dtype=bool)
    if refused.any():
        ax.scatter(x[refused], np.full(int(refused.sum()), 104.0), marker="x", s=12,
                   color="black", label="refused", clip_on=False)
    if record.supporting:
        index = [k for k in record.supporting if 0 <= k < count]
        ax.scatter(x[index], y[index], s=28, facecolors="none", edgecolors="black",
                   linewidths=0.6, zorder=4, label="supporting the call")
    if record.key_slice is not None and 0 <= record.key_slice < count:
        ax.axvline(x[record.key_slice], color="#2ca02c", linewidth=0.8, linestyle=":",
                   label="key slice")
    ax.axhline(record.threshold, color="#ff7f0e", linewidth=0.8, linestyle="--",
               label=f"slice threshold {record.threshold:g}%")
    ax.set_ylim(-8, 108)
    ax.set_xlim(x.min() - step, x.max() + step)
    ax.set_xlabel("slice position (mm, inferior → superior)"
                  if any(p is not None for p in record.positions) else "slice")
    ax.set_ylabel("tumour %")
    answer = (f"refused: {record.error_code}" if record.error is not None
              else f"{record.series_class} ({record.tumour_probability}%)")
    ax.set_title(f"{record.case} {record.sequence} [{record.split}] → {answer}", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=6,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_name(record: VolumeAnswer) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{record.case}_{record.sequence}") + ".png"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} ({_pct(_share(part, whole))})" if whole else "—"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table, the first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def volume_row(record: VolumeAnswer) -> list[str]:
    called = sum(record.called())
    answered = sum(not r for r in record.refused)
    not_assessed = "—" if record.assessed is None else str(record.not_assessed())
    if record.core_cm2 is not None and record.error is None:
        strong = [a >= TUMOUR_SLICE_CM2 for a in record.core_cm2]
        hits = sum(s and c for s, c in zip(strong, record.called(), strict=True))
        tumour_slices = _ratio(hits, sum(strong))
    else:
        tumour_slices = "—"
    answer = (f"refused ({record.error_code})" if record.error is not None
              else f"{record.series_class}, {record.tumour_probability}%")
    right = {True: "yes", False: "**no**", None: "—"}[record.class_right()]
    return [record.case, record.split, f"{record.kind} {record.tumour_type}".replace(
        " none", ""), record.sequence, str(record.slice_count), str(answered), not_assessed,
        answer, right, _ratio(called, record.slice_count), tumour_slices,
        f"{record.seconds:.1f}"]


def render_markdown(report: dict[str, Any], records: Sequence[VolumeAnswer]) -> str:
    """report.md: the volume table, then each side's figures."""
    lines = ["# Whole volumes through /api/classify-series", "",
             f"Model `{report['model']['path']}` ({report['model']['version']}); volumes "
             f"`{report['folder']}`, cases: {report['cases']} (split by case, "
             "`training.volumes.case_split`; each side reported apart).", "",
             f"Series rule (from the answer): {report['rule'] or '—'}", "",
             "## Volumes", ""]
    header = ["Case", "Side", "Kind", "Sequence", "Slices", "Answered", "... not assessed",
              "Series answer", "Right", "Slices called tumour",
              f"Tumour slices (≥ {TUMOUR_SLICE_CM2:g} cm²) called", "Seconds"]
    lines += table(header, [volume_row(r) for r in records])
    lines += ["", "Slices called tumour: answered (and assessed, when the answer says) "
              "slices whose tumour probability (1 - P(No Tumor)) reaches the slice "
              f"threshold ({DEFAULT_THRESHOLD:g}% unless the answer states its own). A "
              "volume refused whole counts against sensitivity and specificity.", ""]
    for side, figures in report["sides"].items():
        s, sl = figures["series"], figures["slices"]
        lines += [f"## {side} cases ({s['cases']} cases, {s['volumes']} volumes)", ""]
        rows = [
            ["Tumour volumes called a tumour (sensitivity)",
             _ratio(s["tumour_volumes_called_tumour"], s["tumour_volumes"])],
            ["... of the right tumour type", _ratio(s["tumour_type_right"],
                                                   s["tumour_volumes"])],
            ["Healthy volumes called No Tumor (specificity)",
             _ratio(s["healthy_volumes_called_no_tumour"], s["healthy_volumes"])],
            ["Volumes refused whole", str(s["refused_whole"])],
            ["Healthy slices called a tumour (of those used)",
             _ratio(sl["healthy_slices_called_tumour"], sl["healthy_slices_used"])],
            ["... of every answered healthy slice", _pct(sl["false_alarm_rate_answered"])],
            ["Tumour-free slices of tumour volumes called a tumour",
             _ratio(sl["tumour_free_slices_called_tumour"],
                    sl["tumour_free_slices_of_tumour_volumes"])],
            [f"Tumour slices (≥ {TUMOUR_SLICE_CM2:g} cm² core) called a tumour",
             _pct(sl["tumour_slice_sensitivity"])],
            ["Slices answered but not assessed", "— (not in the answer)"
             if sl["slices_not_assessed"] is None
             else f"{sl['slices_not_assessed']} of {sl['slices']}"],
            ["Slices refused", f"{sl['slices_refused']} of {sl['slices']}"],
        ]
        lines += table(["Figure", "Value"], rows)
        lines += ["", "Tumour slices by tumour core area:", ""]
        lines += table(["Core area", "Slices", "Answered and assessed", "Called a tumour",
                        "Sensitivity", "Of the assessed"],
                       [[b["bin"], str(b["slices"]), str(b["assessed"]),
                         str(b["called_tumour"]), _pct(b["sensitivity"]),
                         _pct(b["sensitivity_of_assessed"])] for b in sl["by_core_area"]])
        lines += ["", "By kind and sequence:", ""]
        lines += table(["Kind, sequence", "Volumes", "Called a tumour", "Refused"],
                       [[k, str(v["volumes"]), str(v["called_tumour"]), str(v["refused"])]
                        for k, v in figures["by_sequence"].items()])
        lines.append("")
    lines += ["## Plots", "", "One per volume: each slice's tumour probability (1 − P(No "
              "Tumor)) against its position, tumour slices shaded (darker from "
              f"{TUMOUR_SLICE_CM2:g} cm² of core), slices called a tumour as red dots, not "
              "assessed slices as grey ticks at the bottom, refused ones as crosses at the "
              "top, the slices the answer says support its call ringed, the key slice "
              "dotted.", ""]
    lines += [f"- [{r.case} {r.sequence}]({plot_name(r)})" for r in records]
    return "\n".join(lines) + "\n"


def select_volumes(root: Path, cases: str) -> list[VolumeFile]:
    if cases not in CASE_CHOICES:
        raise ValueError(f"cases must be one of {', '.join(CASE_CHOICES)}, not {cases!r}")
    files = read_manifest(root)
    return [f for f in files if cases == "all" or case_split(f.case) == cases]


def evaluate_series(classifier: Classifier, settings: Settings, root: Path, out_dir: Path,
                    cases: str = "test", model_path: Path | None = None) -> dict[str, Any]:
    """Answer every image volume of the chosen cases; write and return the report."""
    started = time.perf_counter()
    root, out_dir = Path(root), Path(out_dir)
    files = select_volumes(root, cases)
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
        "sides": {side: side_figures([r for r in records if r.split == side])
                  for side in sides},
        "volumes": [{**asdict(r), "plot": plot_name(r), "class_right": r.class_right()}
                    for r in records],
    }
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
    for side, figures in report["sides"].items():
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
        }
    return {"summary": out, "seconds": report["seconds"]}
