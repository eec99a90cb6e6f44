"""Slices of real 3D volumes as training examples, split by case.

Why: the dataset's No Tumor slices are mostly mid-brain slices of one web collection, so
a model trained on them alone calls the vertex, the skull base or the ventricles' level
of a healthy head a tumour. ``volumes/`` (its README) holds healthy heads and tumour
volumes with label maps: every slice of a healthy head is a No Tumor example at every
level, and a tumour volume's label map says which slices hold tumour and where.

The slices come out of the service's own NIfTI reader
(:func:`braintumor.series.nifti.series_from_nifti`) and framing, so training sees each
slice exactly as ``/api/classify-series`` will.

The shortcut the README warns of: every glioma volume is skull-stripped, every healthy
head is not, so "skull-stripped" would mean "tumour". Each healthy head is therefore
also trained on skull-stripped (:func:`strip_skull`, intensity and morphology), both
versions No Tumor.

Labels per slice of a tumour volume: tumour core (BraTS labels 1 and 4; the
meningioma's mask) of at least ``MIN_TUMOUR_MM2`` -> the case's class, with the core as
its outline; no tumour label (oedema included) within ``CLEAR_MM`` -> No Tumor with an
empty outline; anything between is left out.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.classes import is_no_tumour
from braintumor.preprocessing import framed_pixels
from braintumor.series.nifti import series_from_nifti
from braintumor.training.masks import frame_mask

log = logging.getLogger(__name__)

#: Smallest tumour core, in mm2 of one slice, for a slice to count as a tumour slice.
MIN_TUMOUR_MM2 = 100.0
#: A tumour volume's slice is a No Tumor example when no tumour label is this close.
CLEAR_MM = 10.0
#: A slice is used when this share of its pixels is foreground (not an empty edge slice).
MIN_FOREGROUND = 0.03
#: Keep every n-th slice of volumes finer than 1.5 mm (neighbours are near copies).
FINE_SLICE_STEP = 2


def case_split(case: str) -> str:
    """"train" (70%), "val" (20%) or "test" (10%) for a case, fixed by its name.

    The shipped model's split: the one full-head tumour volume (GUI-Meningioma-M025)
    falls on the validation side, so its figures are validation figures.
    """
    bucket = int(hashlib.sha256(case.encode()).hexdigest()[:8], 16) % 10
    return "train" if bucket < 7 else ("val" if bucket < 9 else "test")


@dataclass
class VolumeFile:
    case: str
    path: Path
    kind: str  # healthy | tumour
    sequence: str
    tumour_type: str
    label_path: Path | None


def read_manifest(root: Path) -> list[VolumeFile]:
    """The image files of ``volumes/manifest.tsv`` (label maps are reached from them)."""
    root = Path(root)
    with open(root / "manifest.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [VolumeFile(r["case"], root / r["path"], r["kind"], r["sequence"], r["tumour_type"],
                       root / r["label_path"] if r.get("label_path") else None)
            for r in rows if r["sequence"] != "label"]


def strip_skull(volume: np.ndarray, voxel_mm: tuple[float, ...]) -> np.ndarray:
    """A 0/1 brain mask of a head volume: threshold, erode ~7 mm, largest part, grow back.

    Crude but enough to remove the skull, scalp, face and neck, so that a healthy head
    is also seen the way skull-stripped collections show the brain.
    """
    from scipy import ndimage

    values = np.nan_to_num(volume.astype(np.float32))
    high = float(np.percentile(values[values > 0], 99)) if (values > 0).any() else 0.0
    head = values > 0.15 * high
    radius = [max(1, round(7.0 / max(float(z), 0.5))) for z in voxel_mm[:3]]
    ball = _ellipsoid(radius)
    core = ndimage.binary_erosion(head, structure=ball)
    labels, count = ndimage.label(core)
    if count == 0:
        return head.astype(np.uint8)
    sizes = ndimage.sum(core, labels, range(1, count + 1))
    brain = labels == (1 + int(np.argmax(sizes)))
    brain = ndimage.binary_dilation(brain, structure=ball) & head
    brain = ndimage.binary_fill_holes(brain)
    return brain.astype(np.uint8)


def _ellipsoid(radius: list[int]) -> np.ndarray:
    grid = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    return np.asarray(sum((g / r) ** 2 for g, r in zip(grid, radius, strict=True)) <= 1.0)


@dataclass
class VolumeSlices:
    """Framed slices of volumes: pixels, labels, outlines and where each came from."""

    pixels: np.ndarray  # uint8 (N, H, W)
    labels: np.ndarray  # int64 class ids
    outlines: np.ndarray  # int8 (N, H, W), 0/1
    cases: list[str]
    paths: list[str]  # "<volumes folder>/<file>#<variant>:<slice>"


def _slices(data: bytes, window: tuple[float, float] | None = None
            ) -> tuple[list[Any], float]:
    """(decoded slices from inferior to superior, slice spacing in mm) of NIfTI bytes."""
    volume = series_from_nifti(data, max_slices=100_000, max_bytes=2 ** 31,
                               max_pixels=10 ** 8, window=window)
    return [s.load() for s in volume.slices], volume.spacing_mm or 1.0


def _nifti_bytes(values: np.ndarray, affine: np.ndarray) -> bytes:
    import nibabel as nib

    return bytes(nib.Nifti1Image(values.astype(np.float32), affine).to_bytes())


def load_volume_slices(root: Path, class_names: list[str], size: tuple[int, int],
                       framing: str, splits: tuple[str, ...] = ("train",),
                       cache_dir: Path | None = None) -> VolumeSlices:
    """Every usable slice of the cases in ``splits`` (see the module docstring)."""
    import nibabel as nib

    root = Path(root)
    files = [f for f in read_manifest(root) if case_split(f.case) in splits]
    key = hashlib.sha256(repr(([str(f.path) for f in files], size, framing,
                               MIN_TUMOUR_MM2, CLEAR_MM, FINE_SLICE_STEP)).encode())
    cache = (Path(cache_dir) / f"volumes-{size[0]}x{size[1]}-{key.hexdigest()[:16]}.npz"
             if cache_dir else None)
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        return VolumeSlices(stored["pixels"], stored["labels"], stored["outlines"],
                            stored["cases"].tolist(), stored["paths"].tolist())
    no_tumour = next(i for i, n in enumerate(class_names) if is_no_tumour(n))
    by_type = {"glioma": _class_of("glioma", class_names),
               "meningioma": _class_of("meningioma", class_names)}
    pixels, labels, outlines, cases, paths = [], [], [], [], []

    def add(picture, label: int, outline: np.ndarray | None, case: str, path: str) -> None:
        grey = np.asarray(picture.grey, dtype=np.uint8)
        if (grey > 0.12 * max(float(np.percentile(grey, 99)), 1.0)).mean() < MIN_FOREGROUND:
            return
        framed, frame = framed_pixels(picture, size, framing)
        pixels.append(framed)
        outlines.append(np.zeros(size, dtype=np.int8) if outline is None
                        else frame_mask(frame, outline, size).astype(np.int8))
        labels.append(label)
        cases.append(case)
        paths.append(path)

    for item in files:
        raw = item.path.read_bytes()
        rel = f"{root.name}/{item.path.relative_to(root)}"
        if item.kind == "healthy":
            image: Any = nib.load(str(item.path))
            values = np.asarray(image.get_fdata(), dtype=np.float32)
            brain = strip_skull(values, image.header.get_zooms())
            for variant, data in (("head", raw),
                                  ("brain", _nifti_bytes(values * brain, image.affine))):
                decoded, _ = _slices(data)
                for k, picture in enumerate(decoded):
                    add(picture, no_tumour, None, item.case, f"{rel}#{variant}:{k}")
            continue
        if item.label_path is None:
            continue
        label_image: Any = nib.load(str(item.label_path))
        label_values = np.asarray(label_image.dataobj)
        core_labels = (1, 4) if "glioma" in item.tumour_type else (1,)
        coded = np.where(np.isin(label_values, core_labels), 2.0,
                         np.where(label_values > 0, 1.0, 0.0))
        decoded, spacing = _slices(raw)
        label_slices, _ = _slices(_nifti_bytes(coded, label_image.affine), window=(0.0, 2.0))
        if len(label_slices) != len(decoded):
            raise ValueError(f"{item.label_path} does not match {item.path}")
        codes = [np.asarray(s.grey, dtype=np.uint8) for s in label_slices]
        any_tumour = np.array([(c > 0).any() for c in codes])
        step = FINE_SLICE_STEP if spacing < 1.5 else 1
        pixel_mm2 = _pixel_mm2(item.path)
        tumour_class = by_type["glioma" if "glioma" in item.tumour_type else "meningioma"]
        near = max(1, round(CLEAR_MM / spacing))
        for k in range(0, len(decoded), step):
            core = codes[k] > 191
            if core.sum() * pixel_mm2 >= MIN_TUMOUR_MM2:
                add(decoded[k], tumour_class, core, item.case, f"{rel}:{k}")
            elif not any_tumour[max(0, k - near):k + near + 1].any():
                add(decoded[k], no_tumour, None, item.case, f"{rel}:{k}")
    result = VolumeSlices(np.stack(pixels), np.array(labels, dtype=np.int64),
                          np.stack(outlines), cases, paths)
    log.info("volume slices (%s): %d from %d cases, %d tumour", ",".join(splits),
             len(paths), len(set(cases)), int((result.labels != no_tumour).sum()))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, pixels=result.pixels, labels=result.labels,
                            outlines=result.outlines, cases=np.array(cases),
                            paths=np.array(paths))
    return result


def _class_of(word: str, class_names: list[str]) -> int:
    return next(i for i, n in enumerate(class_names) if word in n.lower())


def _pixel_mm2(path: Path) -> float:
    """Area of one displayed pixel: the finer in-plane spacing squared (the reader
    resamples an anisotropic plane to its finer spacing)."""
    import nibabel as nib

    image: Any = nib.load(str(path))
    ornt = nib.io_orientation(image.affine)
    zooms = image.header.get_zooms()
    in_plane = [float(zooms[v]) for v, (w, _) in enumerate(ornt) if int(w) != 2]
    return min(in_plane) ** 2
