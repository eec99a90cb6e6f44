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

A second shortcut remains after that: the gliomas' look itself (skull-stripped, 1 mm,
atlas-registered, clean) is seen almost only with a tumour in it, since a glioma volume's
tumour-free slices are mostly its vertex and base. A skull-stripped healthy brain of
another collection (a template, an atlas-registered research scan) then looks like "a
glioma volume" and is called Glioma at every level. With ``mirrored``,
:func:`mirrored_halves` makes healthy examples of exactly that look: each tumour
volume's hemispheres mirrored across the midline into whole brains, whose slices clear
of any label (the same ``CLEAR_MM`` rule) are No Tumor. A mirrored brain is exactly
symmetric, which no real head is; the real healthy heads (whole and skull-stripped)
keep symmetry from becoming the sign of health.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, replace
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
#: Label values of the tumour core by tumour type (BraTS: 1 necrotic/non-enhancing core,
#: 4 enhancing; the meningioma mask: 1).
CORE_LABELS = {"glioma": (1, 4), "meningioma": (1,)}
#: A tumour label this close to the midline (mm) counts as on both sides of it.
MIDLINE_MARGIN_MM = 8.0
#: How far (voxels) from the volume's middle the midline is looked for.
MIDLINE_SEARCH = 20


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
    #: "" for the file as stored; else a version made from it (:func:`derived_volumes`):
    #: "brain" (skull-stripped), "mirrored-<side>", or either the file or "brain"
    #: z-scored ("zscored", "brain-zscored").
    variant: str = ""


def read_manifest(root: Path) -> list[VolumeFile]:
    """The image files of ``volumes/manifest.tsv`` (label maps are reached from them)."""
    root = Path(root)
    with open(root / "manifest.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [VolumeFile(r["case"], root / r["path"], r["kind"], r["sequence"], r["tumour_type"],
                       root / r["label_path"] if r.get("label_path") else None)
            for r in rows if r["sequence"] != "label"]


def derived_volumes(files: list[VolumeFile]) -> list[VolumeFile]:
    """Versions of ``files`` of the kinds outside collections send and the folder lacks:
    each healthy head skull-stripped (variant "brain") and that z-scored
    ("brain-zscored"); each tumour volume z-scored ("zscored", still a tumour with its
    label map); and each tumour volume's hemisphere that holds no label at all, mirrored
    into a healthy whole brain of that volume's look ("mirrored-left" or
    "mirrored-right": skull-stripped and atlas-registered like the gliomas). Bytes from
    :func:`volume_bytes`.

    Why: the stored healthy heads are all full heads, so a judge is never checked on a
    skull-stripped healthy brain, the case where the gliomas' look misleads it most; and
    no stored volume is normalised inside the brain (zero mean and unit variance there,
    a negative background), as many research pipelines write them.
    """
    import nibabel as nib

    derived = []
    for item in files:
        if item.variant:
            continue
        if item.kind == "healthy":
            derived += [replace(item, variant="brain"), replace(item, variant="brain-zscored")]
        elif item.label_path is not None:
            derived.append(replace(item, variant="zscored"))
            image: Any = nib.load(str(item.path))
            label_image: Any = nib.load(str(item.label_path))
            labels = np.asarray(label_image.dataobj)
            _, sides = hemispheres(np.asarray(image.dataobj), labels, image.affine,
                                   image.header.get_zooms())
            for side, _, side_labels in sides:
                if not side_labels.any():
                    derived.append(replace(item, kind="healthy", tumour_type="none",
                                            variant=f"mirrored-{side}"))
    return derived


def volume_bytes(item: VolumeFile) -> bytes:
    """The NIfTI bytes of ``item``: the file itself, or the version its variant names."""
    if not item.variant:
        return item.path.read_bytes()
    import nibabel as nib

    image: Any = nib.load(str(item.path))
    values = np.asarray(image.get_fdata(), dtype=np.float32)
    if item.variant in ("brain", "brain-zscored"):
        values = values * strip_skull(values, image.header.get_zooms())
    if item.variant in ("zscored", "brain-zscored"):
        return _nifti_bytes(zscored(values), image.affine)
    if item.variant == "brain":
        return _nifti_bytes(values, image.affine)
    if item.label_path is None or not item.variant.startswith("mirrored-"):
        raise ValueError(f"{item.path}: no such variant {item.variant!r}")
    label_image: Any = nib.load(str(item.label_path))
    labels = np.asarray(label_image.dataobj)
    side = item.variant.removeprefix("mirrored-")
    for name, mirrored, _ in mirrored_halves(values, labels, image.affine,
                                             image.header.get_zooms()):
        if name == side:
            return _nifti_bytes(mirrored, image.affine)
    raise ValueError(f"{item.path}: no side {side!r}")


def zscored(values: np.ndarray) -> np.ndarray:
    """``values`` normalised to zero mean and unit variance over the non-zero voxels (the
    brain of a skull-stripped volume), the zero background then below every brain value,
    as BraTS-style pipelines write volumes."""
    inside = values[values != 0]
    if inside.size == 0:
        return values
    spread = float(inside.std()) or 1.0
    return np.where(values != 0, (values - float(inside.mean())) / spread,
                    -float(inside.mean()) / spread).astype(np.float32)


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
                       cache_dir: Path | None = None, mirrored: bool = False
                       ) -> VolumeSlices:
    """Every usable slice of the cases in ``splits`` (see the module docstring);
    ``mirrored``: the tumour volumes' mirrored hemispheres' clear slices too."""
    import nibabel as nib

    root = Path(root)
    files = [f for f in read_manifest(root) if case_split(f.case) in splits]
    key = hashlib.sha256(repr(([str(f.path) for f in files], size, framing,
                               MIN_TUMOUR_MM2, CLEAR_MM, FINE_SLICE_STEP)
                              + ((MIDLINE_MARGIN_MM,) if mirrored else ())).encode())
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
        coded = coded_labels(np.asarray(label_image.dataobj), item.tumour_type)
        decoded, spacing = _slices(raw)
        codes = _label_codes(coded, label_image.affine, len(decoded), item)
        any_tumour = np.array([(c > 0).any() for c in codes])
        step = FINE_SLICE_STEP if spacing < 1.5 else 1
        image = nib.load(str(item.path))
        pixel_mm2 = displayed_pixel_mm2(image)
        tumour_class = by_type["glioma" if "glioma" in item.tumour_type else "meningioma"]
        near = max(1, round(CLEAR_MM / spacing))
        for k in range(0, len(decoded), step):
            core = codes[k] > 191
            if core.sum() * pixel_mm2 >= MIN_TUMOUR_MM2:
                add(decoded[k], tumour_class, core, item.case, f"{rel}:{k}")
            elif not any_tumour[max(0, k - near):k + near + 1].any():
                add(decoded[k], no_tumour, None, item.case, f"{rel}:{k}")
        if not mirrored:
            continue
        values = np.asarray(image.get_fdata(), dtype=np.float32)
        for side, whole, mirrored_codes in mirrored_halves(values, coded, image.affine,
                                                           image.header.get_zooms()):
            decoded = _slices(_nifti_bytes(whole, image.affine))[0]
            codes = _label_codes(mirrored_codes, image.affine, len(decoded), item)
            any_tumour = np.array([(c > 0).any() for c in codes])
            for k in range(0, len(decoded), step):
                if not any_tumour[max(0, k - near):k + near + 1].any():
                    add(decoded[k], no_tumour, None, item.case, f"{rel}#mirrored-{side}:{k}")
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


def coded_labels(values: np.ndarray, tumour_type: str) -> np.ndarray:
    """A label map coded 2 for the tumour core (``CORE_LABELS`` of the type), 1 for any
    other label (oedema), 0 for none."""
    core = CORE_LABELS["glioma" if "glioma" in tumour_type.lower() else "meningioma"]
    return np.where(np.isin(values, core), 2.0, np.where(values > 0, 1.0, 0.0))


def coded_label_slices(coded: np.ndarray, affine: np.ndarray) -> list[np.ndarray]:
    """A :func:`coded_labels` map as the service's NIfTI reader slices its image, through
    a fixed window: uint8 pictures, the core above 191, any label above 0."""
    label_slices, _ = _slices(_nifti_bytes(coded, affine), window=(0.0, 2.0))
    return [np.asarray(s.grey, dtype=np.uint8) for s in label_slices]


def _label_codes(coded: np.ndarray, affine: np.ndarray, count: int,
                 item: VolumeFile) -> list[np.ndarray]:
    """:func:`coded_label_slices`, which must be as many as the image's ``count``."""
    codes = coded_label_slices(coded, affine)
    if len(codes) != count:
        raise ValueError(f"{item.label_path} does not match {item.path}")
    return codes


def hemispheres(values: np.ndarray, coded: np.ndarray, affine: np.ndarray,
                voxel_mm: tuple[float, ...]
                ) -> tuple[int, list[tuple[str, np.ndarray, np.ndarray]]]:
    """(left-right axis, [(side, half, its label map)]): each hemisphere up to the
    midline, left-right axis first, the midline at index 0 of the half.

    The midline is the left-right position about which the brain's foreground is most
    symmetric (searched within ``MIDLINE_SEARCH`` voxels of the middle). A side's label
    map holds its own labels and every label within ``MIDLINE_MARGIN_MM`` of the midline,
    so a tumour touching the midline counts on both sides. Sides are named by anatomy
    ("left", "right").
    """
    import nibabel as nib

    codes = nib.aff2axcodes(affine)
    axis = next(i for i, c in enumerate(codes) if c in ("L", "R"))
    image = np.moveaxis(values, axis, 0)
    labels = np.moveaxis(coded, axis, 0)
    middle = _midline(image > 0)
    half = min(middle, image.shape[0] - middle)
    margin = max(1, round(MIDLINE_MARGIN_MM / max(float(voxel_mm[axis]), 0.5)))
    band = labels[max(0, middle - margin):middle + margin].max(axis=0)
    low_name, high_name = ("left", "right") if codes[axis] == "R" else ("right", "left")
    return axis, [
        (name, part, np.maximum(part_labels, band[None])) for name, part, part_labels in (
            (low_name, image[middle - half:middle][::-1], labels[middle - half:middle][::-1]),
            (high_name, image[middle:middle + half], labels[middle:middle + half]))]


def mirrored_halves(values: np.ndarray, coded: np.ndarray, affine: np.ndarray,
                    voxel_mm: tuple[float, ...]
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(side, volume, label map) of each of the :func:`hemispheres` mirrored across the
    midline into a whole brain, its label map with it (so a tumour touching the midline
    leaves those slices out of both sides)."""
    axis, sides = hemispheres(values, coded, affine, voxel_mm)
    return [(name, np.moveaxis(np.concatenate([part[::-1], part]), 0, axis),
             np.moveaxis(np.concatenate([part_labels[::-1], part_labels]), 0, axis))
            for name, part, part_labels in sides]


def _midline(foreground: np.ndarray) -> int:
    """The index along axis 0 that splits ``foreground`` most symmetrically."""
    centre = foreground.shape[0] // 2
    best, best_score = centre, -1.0
    for middle in range(max(1, centre - MIDLINE_SEARCH),
                        min(foreground.shape[0] - 1, centre + MIDLINE_SEARCH) + 1):
        half = min(middle, foreground.shape[0] - middle)
        low = foreground[middle - half:middle]
        high = foreground[middle:middle + half][::-1]
        score = float((low & high).sum()) / max(float((low | high).sum()), 1.0)
        if score > best_score:
            best, best_score = middle, score
    return best


def _class_of(word: str, class_names: list[str]) -> int:
    return next(i for i, n in enumerate(class_names) if word in n.lower())


def displayed_pixel_mm2(image: Any) -> float:
    """Area of one displayed pixel of a nibabel image: the finer in-plane spacing squared
    (the reader resamples an anisotropic plane to its finer spacing)."""
    import nibabel as nib

    ornt = nib.io_orientation(image.affine)
    zooms = image.header.get_zooms()
    in_plane = [float(zooms[v]) for v, (w, _) in enumerate(ornt) if int(w) != 2]
    return min(in_plane) ** 2
