"""Does the heatmap fall on the tumour? Localisation figures on a run's validation split.

``braintumor evaluate-localisation --model M --run-dir RUN`` takes the figshare tumour
slices that the run's ``split.json`` lists for validation and that have an expert
outline (``figshare-masks/training``; never Testing, never a slice the run trained on),
sends each through :meth:`braintumor.classify.Classifier.classify_upload` exactly as
``/api/classify`` does, and measures, on the rightly classified ones:

- **pointing game**: the heatmap's maximum lies inside the expert mask dilated by
  :data:`DILATE_SHARE` of the picture's long side;
- **energy in mask**: the share of the heatmap's sum that lies inside the (undilated)
  mask;
- **Dice** of the predicted outline (the answer's ``localization`` mask, cut at 0.5 in
  upload pixels), when the model has one.

Both heatmap figures are read off the heatmap the API returns (``heatmap_only``, turned
back into its 0..255 levels through the jet table it was coloured with), so they measure
exactly what a reader is shown, through whatever framing the service draws it with. The
maximum is the pixel of the top level nearest the top level's centroid (a plateau of
equal levels has no single argmax). Two baselines point without looking at the model:
the picture's centre, and the brightest pixel after a small Gaussian blur
(:data:`BLUR_SHARE` of the long side); the energy a uniform map would put in the mask is
the mask's share of the picture.

Written into ``--out``: ``report.json``, ``report.md`` (per class and overall) and
``gallery.png``, 12 slices (scan, expert outline, heatmap, predicted outline), kept
under :data:`GALLERY_MAX_BYTES`.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from braintumor.classes import is_no_tumour
from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.datasets.folders import class_id
from braintumor.decoding import decode_image
from braintumor.errors import BrainTumorError
from braintumor.evaluation.localisation_maps import (
    BLUR_SHARE,
    DILATE_SHARE,
    heat_in_upload,
    peak,
    score_maps,
)
from braintumor.evaluation.tables import table
from braintumor.training.run import RunFolder

log = logging.getLogger(__name__)

#: Slices in the gallery, and its largest size in bytes.
GALLERY_SLICES = 12
GALLERY_MAX_BYTES = 400_000
#: Recipe keys that decide a run's split of the class folders: a model whose own recipe
#: agrees with the run's on all of them was split the same way.
SPLIT_KEYS = ("data", "seed", "val_fraction", "size", "framing", "extra_tumour",
              "extra_val_fraction")


@dataclass
class SliceScore:
    path: str
    truth: str
    predicted: str | None
    refused: bool
    right: bool
    mask_share: float
    pointing: bool | None = None
    energy: float | None = None
    dice: float | None = None
    centre_hit: bool = False
    brightest_hit: bool = False


def validation_slices(run_dir: Path, masks_dir: Path, data_dir: Path,
                      class_names: list[str]) -> list[tuple[str, int]]:
    """(path relative to the Training folder, class id) of the run's validation slices
    that have an expert mask, sorted."""
    split_file = RunFolder(run_dir).split_file
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file} not found: --run-dir must be the model's "
                                "training run folder (its split.json)")
    val = json.loads(split_file.read_text())["val"]
    chosen = []
    for rel in sorted(set(val)):
        parts = Path(rel).parts
        if len(parts) != 2:  # volumes' and extra tumour slices' paths are deeper
            continue
        label = class_id(parts[0], class_names)
        if label is None or is_no_tumour(class_names[label]):
            continue
        if (Path(masks_dir) / rel).with_suffix(".png").is_file() and \
                (Path(data_dir) / rel).is_file():
            chosen.append((rel, label))
    return chosen


def split_check(model_recipe: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Whether the run's recipe splits the class folders as the model's own did."""
    run_config = RunFolder(run_dir).config_file
    if not run_config.is_file() or not model_recipe:
        return {"checked": False,
                "reason": "no recipe in the model or no config.json in the run folder"}
    run = json.loads(run_config.read_text())
    differ = {key: [model_recipe.get(key), run.get(key)] for key in SPLIT_KEYS
              if model_recipe.get(key) != run.get(key)}
    same_run = (Path(str(model_recipe.get("run_dir", ""))).name == Path(run_dir).name)
    return {"checked": True, "model_run_dir": model_recipe.get("run_dir"),
            "same_run_folder_name": same_run, "split_keys_match": not differ,
            "differ": differ}


def score_slice(classifier: Classifier, settings: Settings, data_dir: Path, masks_dir: Path,
                rel: str, truth: str) -> tuple[SliceScore, dict[str, Any] | None]:
    """One slice answered as an upload, and (rightly classified) its figures; with the
    pictures the gallery draws."""
    data = (data_dir / rel).read_bytes()
    mask = np.asarray(Image.open((masks_dir / rel).with_suffix(".png")).convert("L")) > 127
    try:
        result = classifier.classify_upload(data, Path(rel).name)
    except BrainTumorError as exc:
        return SliceScore(rel, truth, None, exc.code == "NOT_BRAIN_MRI", False,
                          float(mask.mean())), None
    predicted = classifier.class_names[result.prediction.class_id]
    score = SliceScore(rel, truth, predicted, False, predicted == truth, float(mask.mean()))
    if not score.right:
        return score, None
    grey = np.asarray(decode_image(data, max_pixels=settings.MAX_IMAGE_PIXELS).grey)
    if grey.shape != mask.shape:
        raise ValueError(f"{rel}: mask {mask.shape}, image {grey.shape}")
    heat = heat_in_upload(result.visualization.heatmap_only, mask.shape)
    outline = result.localization.mask if result.localization is not None else None
    figures = score_maps(heat, mask, grey, outline)
    score.pointing, score.energy, score.dice = (figures["pointing"], figures["energy"],
                                                figures["dice"])
    score.centre_hit, score.brightest_hit = figures["centre_hit"], figures["brightest_hit"]
    overlay = result.visualization.heatmap_overlay
    if overlay.size != (grey.shape[1], grey.shape[0]):
        overlay = overlay.resize((grey.shape[1], grey.shape[0]))
    return score, {"grey": grey, "mask": mask, "outline": outline,
                   "overlay": np.asarray(overlay), "peak": peak(heat)}


def _figures(scores: list[SliceScore]) -> dict[str, Any]:
    right = [s for s in scores if s.right]
    n = len(right)

    def mean(values: list[float]) -> float | None:
        return None if not values else round(float(np.mean(values)), 4)

    dices = [s.dice for s in right if s.dice is not None]
    return {
        "slices": len(scores),
        "refused": sum(s.refused for s in scores),
        "rightly_classified": n,
        "accuracy": None if not scores else round(n / len(scores), 4),
        "pointing_game": mean([float(bool(s.pointing)) for s in right]),
        "energy_in_mask": mean([s.energy for s in right if s.energy is not None]),
        "dice_mean": mean(dices),
        "dice_median": None if not dices else round(float(np.median(dices)), 4),
        "baseline_centre_pointing": mean([float(s.centre_hit) for s in right]),
        "baseline_brightest_pointing": mean([float(s.brightest_hit) for s in right]),
        "uniform_map_energy": mean([s.mask_share for s in right]),
    }


def _contour(ax: Any, mask: np.ndarray, colour: str) -> None:
    if np.asarray(mask).any():
        ax.contour(np.asarray(mask, dtype=np.float32), levels=[0.5], colors=[colour],
                   linewidths=0.8)


def write_gallery(items: list[dict[str, Any]], path: Path, has_outline: bool) -> int:
    """A PNG of the slices (one row each: scan, expert outline, heatmap over the scan,
    predicted outline), quantised to stay under :data:`GALLERY_MAX_BYTES`; its size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(items) + 1) // 2
    columns = 8
    titles = ["scan", "expert outline", "heatmap", "predicted outline"]
    for side, dpi in ((1.05, 100), (0.9, 90), (0.75, 80)):
        fig, axes = plt.subplots(rows, columns, figsize=(columns * side, rows * side + 0.3),
                                 dpi=dpi, squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for i, item in enumerate(items):
            row, offset = i // 2, 4 * (i % 2)
            grey, mask = item["grey"], item["mask"]
            panels = axes[row, offset:offset + 4]
            for ax in panels:
                ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
            _contour(panels[1], mask, "#00ff00")
            panels[2].imshow(item["overlay"])
            _contour(panels[2], mask, "#ffffff")
            if item["peak"] is not None:
                panels[2].plot(item["peak"][1], item["peak"][0], "w+", markersize=5)
            if has_outline and item["outline"] is not None:
                _contour(panels[3], mask, "#00ff00")
                _contour(panels[3], item["outline"], "#ff3030")
            else:
                panels[3].text(0.5, 0.5, "no outline", color="white", ha="center",
                               va="center", fontsize=6, transform=panels[3].transAxes)
            panels[0].set_title(f"{item['class']}", fontsize=5, loc="left", pad=1)
            dice_text = "" if item["dice"] is None else f" dice {item['dice']:.2f}"
            panels[2].set_title(f"{'hit' if item['pointing'] else 'miss'} "
                                f"{100 * item['energy']:.0f}%", fontsize=5, pad=1)
            panels[3].set_title(dice_text.strip(), fontsize=5, pad=1)
            if row == 0:
                for ax, title in zip(panels, titles, strict=True):
                    ax.set_xlabel(title)
        fig.suptitle("scan | expert outline (green) | heatmap as returned (+: its maximum) "
                     "| predicted outline (red)", fontsize=6)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.3 / (rows * side
                                                                            + 0.3),
                            wspace=0.03, hspace=0.18)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        picture = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        quantised = picture.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        quantised.save(out, format="PNG", optimize=True)
        if out.tell() <= GALLERY_MAX_BYTES:
            break
    path.write_bytes(out.getvalue())
    return out.tell()


def _gallery_choice(scores: list[SliceScore], class_names: list[str]) -> list[int]:
    """Indices of up to GALLERY_SLICES rightly classified slices, spread evenly over each
    class in turn."""
    by_class: dict[str, list[int]] = {}
    for i, s in enumerate(scores):
        if s.right:
            by_class.setdefault(s.truth, []).append(i)
    classes = [c for c in class_names if c in by_class]
    if not classes:
        return []
    share = max(1, GALLERY_SLICES // len(classes))
    chosen: list[int] = []
    for c in classes:
        members = by_class[c]
        picks = np.linspace(0, len(members) - 1, min(share, len(members))).round()
        chosen += [members[int(k)] for k in dict.fromkeys(picks.tolist())]
    return chosen[:GALLERY_SLICES]


def render_markdown(report: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}%"

    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    check = report["split_check"]
    lines = ["# Localisation on the run's validation split", "",
             f"Model `{report['model']['path']}` ({report['model']['version']}, Grad-CAM "
             f"layer `{report['model']['gradcam_layer']}`, outline: "
             f"{'yes' if report['model']['outline'] else 'no'}); run `{report['run_dir']}`: "
             f"{report['slices']} validation figshare tumour slices with an expert mask.",
             ""]
    if check.get("checked") and not check["split_keys_match"]:
        lines += [f"**Warning**: the run's recipe differs from the model's on "
                  f"{', '.join(check['differ'])}: this may not be the model's own split.", ""]
    elif check.get("checked") and not check["same_run_folder_name"]:
        lines += [f"The model was trained in `{check['model_run_dir']}`; this run's recipe "
                  "agrees with it on every key that decides the class folders' split "
                  f"({', '.join(SPLIT_KEYS)}).", ""]
    lines += [f"Rightly classified slices only (answered as `/api/classify` answers). "
              f"Pointing game: the returned heatmap's maximum inside the expert mask "
              f"dilated by {100 * DILATE_SHARE:g}% of the long side; energy: share of the "
              "heatmap's sum inside the mask; Dice of the outline the answer gives "
              "(threshold 0.5, upload pixels). Baselines: the picture's centre, the "
              f"brightest pixel after a Gaussian blur of {100 * BLUR_SHARE:g}% of the long "
              "side; a uniform map's energy is the mask's share of the picture.", ""]
    header = ["Class", "Slices", "Right", "Pointing game", "Energy in mask", "Dice mean",
              "Dice median", "Centre pointing", "Brightest pointing", "Uniform energy"]
    rows = []
    for name, f in [*report["per_class"].items(), ("**All**", report["overall"])]:
        rows.append([name, str(f["slices"]), f"{f['rightly_classified']} "
                     f"({pct(f['accuracy'])})", pct(f["pointing_game"]),
                     pct(f["energy_in_mask"]), num(f["dice_mean"]), num(f["dice_median"]),
                     pct(f["baseline_centre_pointing"]),
                     pct(f["baseline_brightest_pointing"]), pct(f["uniform_map_energy"])])
    lines += table(header, rows)
    lines += ["", f"![gallery]({report['gallery']['file']}) ({report['gallery']['slices']} "
              f"slices, {report['gallery']['bytes'] // 1000} KB)", ""]
    return "\n".join(lines)


def evaluate_localisation(classifier: Classifier, settings: Settings, run_dir: Path,
                          masks_dir: Path, data_dir: Path, out_dir: Path,
                          limit: int | None = None) -> dict[str, Any]:
    """Score every validation slice with a mask (``limit``: the first n per class)."""
    started = time.perf_counter()
    model = classifier.model
    class_names = list(classifier.class_names)
    chosen = validation_slices(run_dir, masks_dir, data_dir, class_names)
    if limit is not None:
        counts: dict[int, int] = {}
        kept = []
        for rel, label in chosen:
            counts[label] = counts.get(label, 0) + 1
            if counts[label] <= limit:
                kept.append((rel, label))
        chosen = kept
    if not chosen:
        raise ValueError(f"no validation slice of {run_dir} has a mask in {masks_dir}")
    has_outline = bool(model.metadata.segmentation_layer)
    scores = [score_slice(classifier, settings, Path(data_dir), Path(masks_dir), rel,
                          class_names[label])[0] for rel, label in chosen]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for i in _gallery_choice(scores, class_names):  # answered again: nothing is held
        s, seen = score_slice(classifier, settings, Path(data_dir), Path(masks_dir),
                              scores[i].path, scores[i].truth)
        if seen is not None:
            items.append({**seen, "class": s.truth, "pointing": s.pointing,
                          "energy": s.energy or 0.0, "dice": s.dice})
    size = write_gallery(items, out_dir / "gallery.png", has_outline) if items else 0
    recipe = (model.metadata.training or {}).get("recipe") or {}
    per_class = {name: _figures([s for s in scores if s.truth == name])
                 for name in class_names if any(s.truth == name for s in scores)}
    report: dict[str, Any] = {
        "model": {"path": str(model.path), "version": model.metadata.version,
                  "architecture": model.metadata.architecture,
                  "gradcam_layer": model.graph.layer_name, "outline": has_outline,
                  "framing": model.input_spec.framing},
        "run_dir": str(run_dir), "masks": str(masks_dir), "data": str(data_dir),
        "split_check": split_check(recipe, Path(run_dir)),
        "ood_policy": settings.OOD_POLICY,
        "limit_per_class": limit,
        "slices": len(scores),
        "dilate_share": DILATE_SHARE, "blur_share": BLUR_SHARE,
        "per_class": per_class,
        "overall": _figures(scores),
        "gallery": {"file": "gallery.png", "slices": len(items), "bytes": size},
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "scores": [asdict(s) for s in scores],
    }
    report["seconds"] = round(time.perf_counter() - started, 2)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))
    return report


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("slices", "rightly_classified", "pointing_game", "energy_in_mask", "dice_mean",
            "baseline_centre_pointing", "baseline_brightest_pointing", "uniform_map_energy")
    return {"overall": {k: report["overall"][k] for k in keys},
            "per_class": {name: {k: f[k] for k in keys}
                          for name, f in report["per_class"].items()},
            "split_check": report["split_check"], "gallery_bytes": report["gallery"]["bytes"],
            "seconds": report["seconds"]}
