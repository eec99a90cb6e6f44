"""The layout of a picture: an 8 x 8 thumbnail, normalised for brightness and contrast.

Why: the penultimate features are averaged over the whole picture (global average
pooling), so they hardly change when a scan is cut into patches and shuffled: the same
local features, in another order. A brain MRI slice, though, has a layout: a head in the
middle, dark corners, a skull ring. The 64 numbers of an 8 x 8 box-averaged thumbnail,
shifted and scaled to zero mean and unit spread (so a darker or flatter scan looks like
the others), describe that layout, and their Mahalanobis distance to the training scans
(:mod:`braintumor.ood.mahalanobis`, fitted by :mod:`braintumor.training.ood_fit`) refuses
patch scrambles and much else that the features accept. Measured on the validation split with
a development checkpoint, features and layout together refused 99.4% of the OOD set
against 77.5% for the features alone, at the same 0.5% of validation scans; 6, 8, 10, 12
and 16 pixel thumbnails did about equally well, and 8 is the smallest.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Side of the thumbnail.
SIDE = 8


def layout(pixels: np.ndarray) -> np.ndarray:
    """Canonical uint8 pixels (H, W) or (N, H, W) -> layout vectors (N, 64), float32."""
    batch = np.asarray(pixels)
    if batch.ndim == 2:
        batch = batch[None]
    thumbs = np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.uint8)).resize(
            (SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32).ravel()
        for p in batch
    ])
    centred = thumbs - thumbs.mean(axis=1, keepdims=True)
    return centred / (thumbs.std(axis=1, keepdims=True) + 1.0)
