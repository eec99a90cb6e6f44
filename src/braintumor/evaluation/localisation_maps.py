"""The figures of one slice's heatmap against its expert mask, for
``braintumor evaluate-localisation`` (:mod:`braintumor.evaluation.localisation`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from braintumor.explain.render import jet_lut

#: The mask is dilated by this share of the picture's long side for the pointing game.
DILATE_SHARE = 0.03
#: Sigma of the blur before the brightest-pixel baseline, as a share of the long side.
BLUR_SHARE = 0.01


def jet_levels(rgb: np.ndarray) -> np.ndarray:
    """A jet-coloured picture (H, W, 3) -> the 0..255 levels it was coloured from.

    A colour that several levels share (jet is flat over 28..31) reads as their mean; a
    colour that is no entry of the table reads as the nearest entry's level.
    """
    table = jet_lut().astype(np.int64)
    packed = (table[:, 0] << 16) | (table[:, 1] << 8) | table[:, 2]
    colours_of, which = np.unique(packed, return_inverse=True)
    level_of = (np.bincount(which, weights=np.arange(len(packed)))
                / np.bincount(which)).astype(np.float32)
    colours = np.asarray(rgb, dtype=np.int64).reshape(-1, 3)
    keys = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    found = np.clip(np.searchsorted(colours_of, keys), 0, len(colours_of) - 1)
    levels = level_of[found]
    missing = colours_of[found] != keys
    if missing.any():
        distance = ((colours[missing, None, :] - table[None, :, :]) ** 2).sum(axis=2)
        levels[missing] = distance.argmin(axis=1)
    return levels.reshape(np.asarray(rgb).shape[:2])


def dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (Euclidean)."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask
    return ndimage.distance_transform_edt(~mask) <= radius


def peak(heat: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the map's maximum: the top-level pixel nearest the top level's
    centroid; None for an all-zero map."""
    heat = np.asarray(heat)
    top = heat.max()
    if top <= 0:
        return None
    rows, columns = np.nonzero(heat == top)
    centre_r, centre_c = rows.mean(), columns.mean()
    nearest = int(np.argmin((rows - centre_r) ** 2 + (columns - centre_c) ** 2))
    return int(rows[nearest]), int(columns[nearest])


def inside(point: tuple[int, int] | None, mask: np.ndarray) -> bool:
    return point is not None and bool(mask[point])


def energy_in(heat: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's sum inside ``mask`` (0 for an all-zero map)."""
    heat = np.asarray(heat, dtype=np.float64)
    total = heat.sum()
    return 0.0 if total <= 0 else float(heat[np.asarray(mask, dtype=bool)].sum() / total)


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    total = predicted.sum() + truth.sum()
    return 1.0 if total == 0 else float(2.0 * (predicted & truth).sum() / total)


def centre_point(shape: tuple[int, int]) -> tuple[int, int]:
    return (shape[0] - 1) // 2, (shape[1] - 1) // 2


def brightest_point(grey: np.ndarray) -> tuple[int, int]:
    """The brightest pixel of ``grey`` after a Gaussian blur of :data:`BLUR_SHARE`."""
    from scipy import ndimage

    sigma = max(1.0, BLUR_SHARE * max(grey.shape))
    smooth = ndimage.gaussian_filter(np.asarray(grey, dtype=np.float32), sigma)
    found = peak(smooth - smooth.min())
    return found if found is not None else centre_point(grey.shape)


def heat_in_upload(heatmap_only: Image.Image, shape: tuple[int, int]) -> np.ndarray:
    """The returned heatmap's levels (0..1) over the upload's pixels: the picture is
    the upload's size unless the upload is outside [224, VISUALIZATION_MAX_SIZE]."""
    levels = jet_levels(np.asarray(heatmap_only.convert("RGB"))) / 255.0
    if levels.shape != shape:
        levels = np.asarray(Image.fromarray(levels, mode="F").resize(
            (shape[1], shape[0]), Image.Resampling.BILINEAR))
    return levels


def score_maps(heat: np.ndarray, mask: np.ndarray, grey: np.ndarray,
               outline: np.ndarray | None) -> dict[str, Any]:
    """The figures of one slice: heatmap and outline in upload pixels, the expert mask."""
    mask = np.asarray(mask, dtype=bool)
    grown = dilate(mask, DILATE_SHARE * max(mask.shape))
    return {"pointing": inside(peak(heat), grown), "energy": energy_in(heat, mask),
            "dice": None if outline is None else dice(outline, mask),
            "centre_hit": inside(centre_point(mask.shape), grown),
            "brightest_hit": inside(brightest_point(grey), grown),
            "mask_share": float(mask.mean())}

