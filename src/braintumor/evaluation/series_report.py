"""What ``braintumor evaluate-series`` writes besides report.json: one plot per volume
and report.md (:mod:`braintumor.evaluation.series_eval`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.evaluation.series_volumes import (
    DEFAULT_THRESHOLD,
    TUMOUR_SLICE_CM2,
    VolumeAnswer,
    share,
)
from braintumor.evaluation.tables import table


def plot_volume(record: VolumeAnswer, path: Path) -> None:
    """The slices' tumour probability against slice position (module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = record.slice_count
    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=100)
    if count == 0:  # refused whole: nothing to draw but why
        ax.axis("off")
        ax.text(0.5, 0.5, f"{record.case} {_sequence(record)} [{record.split}]: refused "
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
    ax.set_title(f"{record.case} {_sequence(record)} [{record.split}] → {answer}", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=6,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_name(record: VolumeAnswer) -> str:
    name = "_".join(filter(None, (record.case, record.sequence, record.variant)))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png"


def _sequence(record: VolumeAnswer) -> str:
    return f"{record.sequence} ({record.variant})" if record.variant else record.sequence


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} ({_pct(share(part, whole))})" if whole else "—"


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
        " none", ""), _sequence(record), str(record.slice_count), str(answered), not_assessed,
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
    groups = [(f"{side} cases", f) for side, f in report["sides"].items()]
    groups += [(f"{side} cases, derived volumes (skull-stripped heads, z-scored "
                "volumes, mirrored label-free hemispheres of tumour volumes)", f)
               for side, f in report.get("derived", {}).items()]
    for title, figures in groups:
        s, sl = figures["series"], figures["slices"]
        lines += [f"## {title} ({s['cases']} cases, {s['volumes']} volumes)", ""]
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
        short = figures["short_series"]
        rows += [
            [f"Short series replayed ({short['slices']} slices {short['step_mm']:g} mm "
             "apart in the assessed levels), healthy, called a tumour",
             _ratio(short["healthy_called_tumour"], short["healthy_series"])],
            ["... of tumour volumes (>= 2 tumour slices), called a tumour",
             _ratio(short["tumour_called_tumour"], short["tumour_series"])],
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
    lines += [f"- [{r.case} {_sequence(r)}]({plot_name(r)})" for r in records]
    return "\n".join(lines) + "\n"
