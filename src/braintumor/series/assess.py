"""Whether a slice of a series shows enough brain to be judged: its brain area.

A whole volume holds slices a reader does not judge for a tumour on their own: the
vertex cap (a few cm2 of cortex under the skull), the skull base and the neck below the
brain, slices above or beside the head. The slice model was trained on mid-brain slices
and calls such slices a tumour far more often than real brain slices, so they are
counted and listed as "not assessed" and never used to call a tumour.

The brain is found by intensity and morphology on the decoded grey pictures (what the
model sees), not the head:

1. each picture is reduced to about :data:`WORK_MM` per pixel (the answer and its cost
   do not depend on the scan's resolution);
2. tissue is what is brighter than the Otsu threshold (against background, CSF and
   bone): of the whole volume, or of each slice of another series (there, when the
   brain found is small for its head, again at the lower of three Otsu levels: a bright
   scalp, contrast or tumour may have taken the upper class);
3. the tissue is eroded by :data:`ERODE_MM`, softly (a point stays where at least
   :data:`CORE_TISSUE` of the box around it is tissue, so scanner noise does not pierce
   the brain while the dark skull parts it from the scalp, face and neck);
4. of the parts left, the brain is the one deepest inside the head (the largest mean
   distance to the head's outline in its slice) among the large ones: the scalp and the
   face are large too, but shallow;
5. it is grown back by as much, within the tissue, and its holes (ventricles, a
   necrotic core) are filled unless the hole is most of it (a scalp ring at the vertex).

A volume (at least :data:`VOLUME_SLICES` slices at most :data:`VOLUME_MAX_SPACING_MM`
apart) is masked in 3-D (when its brain comes out small for its head, again at the lower
of three Otsu levels, eroded :data:`RETRY_ERODE_MM`: elderly heads with a bright scalp),
where the skull base parts the brain from the neck; other series slice by slice (2-D),
where the two hemispheres, apart near the vertex, both count.

A slice's brain area is in cm2 where the pixel spacing is known (DICOM Pixel Spacing,
NIfTI in-plane voxel size). Without it the pixel size is taken as
:data:`ASSUMED_FIELD_MM` over the picture's larger side, for the morphology only, and
the area is judged against the series' largest (:func:`assessed_slices`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

#: A slice is assessed when its brain area is at least this (cm2), pixel spacing known.
#: An adult brain's largest axial section is 120-180 cm2; the vertex cap and the lowest
#: cerebellar slices fall below it.
MIN_BRAIN_CM2 = 25.0
#: Without the pixel spacing: at least this share of the series' largest brain area.
MIN_BRAIN_SHARE = 0.35
#: How far the tissue is eroded (mm) to part the brain from the scalp, face and neck.
ERODE_MM = 7.0
#: The share of tissue around a point (a box of +-ERODE_MM) that keeps it in the core.
CORE_TISSUE = 0.9
#: The masks are computed at about this pixel size (mm); finer pictures are reduced.
WORK_MM = 2.0
#: Without a pixel spacing, the picture's larger side is taken to span this (mm).
ASSUMED_FIELD_MM = 240.0
#: Parts of the core smaller than this share of the largest are never the brain.
MIN_PART_SHARE = 0.1
#: 2-D: parts at least this share of the brain's size and this share of its depth are
#: brain too (the hemispheres, split by the falx near the vertex).
HEMISPHERE_SIZE = 0.5
HEMISPHERE_DEPTH = 0.85
#: A filled region whose tissue is less than this share of it is a ring (the scalp
#: around a vertex, a slice through the skull): it counts without its hole.
MIN_FILLED_TISSUE = 0.6
#: Grey levels at or below this are never tissue, whatever the threshold says.
MIN_TISSUE_GREY = 8
#: 2-D: a brain under this share of its head's area may be darker than the threshold
#: (a bright scalp, contrast or tumour took the upper class): the slice is masked again
#: at the lower of three Otsu levels, and that mask is taken when larger but at most
#: MAX_HEAD_SHARE of the head (the brain still parted from the scalp).
RETRY_BELOW = 0.3
MAX_HEAD_SHARE = 0.85
#: 3-D: the same when the brain's widest slice is under this share of that slice's head;
#: the lower threshold is eroded further (RETRY_ERODE_MM), the skull base kept.
RETRY_BELOW_3D = 0.4
RETRY_ERODE_MM = 10.0
#: A series of at least this many slices with a known slice spacing of at most
#: VOLUME_MAX_SPACING_MM is masked as a volume (3-D); thicker slices are too far apart
#: for the skull base to part brain from neck across them, and are masked one by one.
VOLUME_SLICES = 8
VOLUME_MAX_SPACING_MM = 3.0


def otsu_threshold(grey: np.ndarray) -> int:
    """The grey level (0-255) that best splits ``grey``'s histogram in two (Otsu)."""
    hist = np.bincount(np.asarray(grey, dtype=np.uint8).ravel(), minlength=256)
    hist = hist.astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    omega = np.cumsum(hist) / total
    mu = np.cumsum(hist * np.arange(256)) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega))
    return int(np.argmax(np.nan_to_num(between)))


def otsu_3(grey: np.ndarray) -> tuple[int, int]:
    """The two grey levels that best split ``grey``'s histogram in three (Otsu)."""
    hist = np.bincount(np.asarray(grey, dtype=np.uint8).ravel(), minlength=256)
    p = hist.astype(np.float64) / max(1, int(hist.sum()))
    weight = np.concatenate([[0.0], np.cumsum(p)])  # of the levels below each cut
    moment = np.concatenate([[0.0], np.cumsum(p * np.arange(256))])
    a, b = np.triu_indices(257, k=1)  # cuts 0 <= a < b <= 256
    w0, w1, w2 = weight[a], weight[b] - weight[a], 1.0 - weight[b]
    m0, m1, m2 = moment[a], moment[b] - moment[a], moment[-1] - moment[b]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = sum(np.where(w > 0, m * m / np.where(w > 0, w, 1.0), 0.0)
                    for w, m in ((w0, m0), (w1, m1), (w2, m2)))
    best = int(np.argmax(score))
    return int(a[best]) - 1, int(b[best]) - 1


def working_pixel_mm(shape: tuple[int, int], pixel_mm: float | None) -> float:
    """The pixel size (mm) a picture of ``shape`` (rows, columns) is taken to have."""
    if pixel_mm is not None and pixel_mm > 0 and math.isfinite(pixel_mm):
        return float(pixel_mm)
    return ASSUMED_FIELD_MM / max(shape)


def reduce_slice(grey: np.ndarray | Image.Image, pixel_mm: float | None,
                 shape: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
    """(a grey picture at about :data:`WORK_MM` per pixel, its pixel size in mm).

    ``shape`` (rows, columns): the size to reduce to, so that all slices of a series
    get the same (the first slice's); computed from ``pixel_mm`` when None.
    """
    picture = grey if isinstance(grey, Image.Image) else Image.fromarray(
        np.asarray(grey, dtype=np.uint8))
    picture = picture.convert("L")
    mm = working_pixel_mm((picture.height, picture.width), pixel_mm)
    if shape is None:
        factor = min(1.0, mm / WORK_MM)
        shape = (max(1, round(picture.height * factor)), max(1, round(picture.width * factor)))
    reduced_mm = mm * picture.width / shape[1]
    if (picture.height, picture.width) != shape:
        picture = picture.resize((shape[1], shape[0]), Image.Resampling.BOX)
    return np.asarray(picture, dtype=np.uint8), reduced_mm


def _head_depth(stack: np.ndarray, thresholds: np.ndarray, mm: float) -> np.ndarray:
    """Per slice, each pixel's distance (mm) inside the head's outline (0 outside)."""
    from scipy import ndimage

    depth = np.zeros(stack.shape, dtype=np.float32)
    for k, picture in enumerate(stack):
        low = max(int(thresholds[k]) // 3, MIN_TISSUE_GREY)
        head = ndimage.binary_fill_holes(ndimage.binary_closing(picture > low, iterations=2))
        depth[k] = ndimage.distance_transform_edt(np.pad(head, 1))[1:-1, 1:-1] * mm
    return depth


def _choose(labels: np.ndarray, count: int, depth: np.ndarray, hemispheres: bool
            ) -> list[int]:
    """The labels of the brain among ``count`` core parts (see the module's step 4)."""
    from scipy import ndimage

    index = np.arange(1, count + 1)
    sizes = np.asarray(ndimage.sum(np.ones_like(depth), labels, index), dtype=np.float64)
    depths = np.asarray(ndimage.mean(depth, labels, index), dtype=np.float64)
    large = sizes >= MIN_PART_SHARE * sizes.max()
    best = int(np.argmax(np.where(large, depths, -1.0)))
    chosen = [best + 1]
    if hemispheres:
        chosen += [int(i) + 1 for i in range(count) if i != best
                   and sizes[i] >= HEMISPHERE_SIZE * sizes[best]
                   and depths[i] >= HEMISPHERE_DEPTH * depths[best]]
    return chosen


def _fill(mask: np.ndarray) -> np.ndarray:
    """Fill a slice's holes unless the hole is most of the region (a ring)."""
    from scipy import ndimage

    filled = ndimage.binary_fill_holes(mask)
    return filled if mask.sum() >= MIN_FILLED_TISSUE * filled.sum() else mask


def brain_masks(stack: np.ndarray, mm: float, slice_mm: float | None = None) -> np.ndarray:
    """Boolean brain masks (N, H, W) of grey pictures (N, H, W) at ``mm`` per pixel.

    ``slice_mm``: the slices are a volume this far apart, masked in 3-D; None: each
    slice on its own.
    """
    stack = np.asarray(stack, dtype=np.uint8)
    if stack.ndim != 3 or stack.size == 0:
        raise ValueError("brain_masks takes a stack of grey pictures (N, H, W)")
    volume = slice_mm is not None and slice_mm > 0
    # a volume's slices share one grey scale (one threshold); other series' slices may
    # each have their own (a series made of unrelated pictures)
    thresholds = np.array([otsu_threshold(stack)] * len(stack) if volume
                          else [otsu_threshold(picture) for picture in stack])
    tissue = stack > np.maximum(thresholds, MIN_TISSUE_GREY)[:, None, None]
    radius = max(1, round(ERODE_MM / mm))
    depth = _head_depth(stack, thresholds, mm)
    if volume and slice_mm is not None:  # one 3-D brain
        brain = _volume_brain(tissue, depth, mm, slice_mm, ERODE_MM)
        head = (depth > 0).sum(axis=(1, 2))
        widest = int(np.argmax(brain.sum(axis=(1, 2))))
        if brain[widest].sum() < RETRY_BELOW_3D * max(1, head[widest]):
            # the brain darker than the threshold: a bright scalp took the upper class
            lower = stack > max(otsu_3(stack)[0], MIN_TISSUE_GREY)
            again = _volume_brain(lower, depth, mm, slice_mm, RETRY_ERODE_MM)
            at = int(np.argmax(again.sum(axis=(1, 2))))
            if brain.sum() < again.sum() and again[at].sum() <= MAX_HEAD_SHARE * head[at]:
                brain = again
        return brain
    masks = np.zeros_like(tissue)
    for k, picture in enumerate(stack):
        masks[k] = _slice_brain(tissue[k], depth[k], radius, mm)
        head = float((depth[k] > 0).sum())
        if masks[k].sum() < RETRY_BELOW * head:  # the brain darker than the threshold?
            lower = picture > max(otsu_3(picture)[0], MIN_TISSUE_GREY)
            again = _slice_brain(lower, depth[k], radius, mm)
            if masks[k].sum() < again.sum() <= MAX_HEAD_SHARE * head:
                masks[k] = again
    return masks


def _volume_brain(tissue: np.ndarray, depth: np.ndarray, mm: float, slice_mm: float,
                  erode_mm: float) -> np.ndarray:
    """A volume's brain mask from its tissue mask (the module's steps 3-5, in 3-D)."""
    from scipy import ndimage

    radius = max(1, round(erode_mm / mm))
    depth_radius = math.floor(erode_mm / slice_mm)
    box = (2 * depth_radius + 1, 2 * radius + 1, 2 * radius + 1)
    core = ndimage.uniform_filter(tissue.astype(np.float32), size=box,
                                  mode="constant") >= CORE_TISSUE
    labels, count = ndimage.label(core)
    if count == 0:
        return np.zeros_like(tissue)
    brain = np.isin(labels, _choose(labels, count, depth, hemispheres=False))
    grown = ndimage.distance_transform_edt(~brain, sampling=(slice_mm, mm, mm)) <= erode_mm
    return np.stack([_fill(m) for m in grown & tissue])


def _slice_brain(tissue: np.ndarray, depth: np.ndarray, radius: int, mm: float
                 ) -> np.ndarray:
    """One slice's brain mask from its tissue mask (the module's steps 3-5, in 2-D)."""
    from scipy import ndimage

    core = ndimage.uniform_filter(tissue.astype(np.float32), size=2 * radius + 1,
                                  mode="constant") >= CORE_TISSUE
    labels, count = ndimage.label(core)
    if count == 0:
        return np.zeros_like(tissue)
    brain = np.isin(labels, _choose(labels, count, depth, hemispheres=True))
    grown = ndimage.distance_transform_edt(~brain) * mm <= ERODE_MM
    return _fill(grown & tissue)


def brain_areas_cm2(stack: np.ndarray, mm: float, slice_mm: float | None = None
                    ) -> list[float]:
    """Each slice's brain area in cm2 (see :func:`brain_masks`), to 0.1 cm2."""
    masks = brain_masks(stack, mm, slice_mm)
    return [round(float(n) * mm * mm / 100.0, 1) for n in masks.sum(axis=(1, 2))]


def brain_area_cm2(grey: np.ndarray | Image.Image, pixel_mm: float | None = None) -> float:
    """The brain area of one grey slice in cm2 (``pixel_mm`` None: in cm2 of an assumed
    :data:`ASSUMED_FIELD_MM` field of view, meaningful only against other slices)."""
    reduced, mm = reduce_slice(grey, pixel_mm)
    return brain_areas_cm2(reduced[np.newaxis], mm)[0]


class BrainAreas:
    """Collects a series' slices at the working scale, one at a time, and measures
    their brain areas at the end (the 3-D mask needs them all; reduced, 400 slices of
    512x512 at 0.5 mm hold 6.5 MB)."""

    def __init__(self, pixel_mm: float | None) -> None:
        self.pixel_mm = pixel_mm
        self._reduced: list[np.ndarray] = []
        self._mm: float | None = None
        self._shape: tuple[int, int] | None = None

    def add(self, grey: Image.Image) -> None:
        reduced, mm = reduce_slice(grey, self.pixel_mm, self._shape)
        if self._shape is None:
            self._shape, self._mm = (reduced.shape[0], reduced.shape[1]), mm
        self._reduced.append(reduced)

    def areas(self, slice_mm: float | None) -> list[float]:
        """cm2 per slice added; 3-D for a volume (at least :data:`VOLUME_SLICES` slices
        ``slice_mm`` apart, at most :data:`VOLUME_MAX_SPACING_MM`), else slice by slice."""
        if not self._reduced or self._mm is None:
            return []
        volume = slice_mm if (slice_mm and 0 < slice_mm <= VOLUME_MAX_SPACING_MM
                              and len(self._reduced) >= VOLUME_SLICES) else None
        return brain_areas_cm2(np.stack(self._reduced), self._mm, volume)


def assessed_slices(areas: Sequence[float | None], *, spacing_known: bool) -> list[bool]:
    """Which slices are assessed, from their brain areas (None: not measured, never
    assessed): at least :data:`MIN_BRAIN_CM2` when ``spacing_known`` (the areas are in
    cm2), otherwise at least :data:`MIN_BRAIN_SHARE` of the series' largest."""
    known = [a for a in areas if a is not None]
    if not known:
        return [False] * len(areas)
    if spacing_known:
        return [a is not None and a >= MIN_BRAIN_CM2 for a in areas]
    largest = max(known)
    return [a is not None and largest > 0 and a >= MIN_BRAIN_SHARE * largest for a in areas]
