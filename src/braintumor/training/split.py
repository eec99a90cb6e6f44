"""A validation split that keeps near-duplicates together.

The public dataset repeats itself: Training holds 155 groups of (near-)identical images.
A random split would put copies of one scan on both sides and inflate every validation
figure, and with them early stopping and the temperature. Images are grouped by the
dataset's own near-duplicate rule (mean absolute difference below 8 on 64x64 grey
thumbnails), and whole groups are assigned to one side, stratified by class and seeded.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

THUMB = 64
NEAR_DUPLICATE_MAD = 8.0


def thumbnails(pixels: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 -> (N, 64*64) float32 grey thumbnails."""
    return np.stack([
        np.asarray(Image.fromarray(p).resize((THUMB, THUMB), Image.Resampling.BILINEAR),
                   dtype=np.float32).ravel()
        for p in pixels
    ])


def near_duplicate_pairs(thumbs: np.ndarray, other: np.ndarray | None = None,
                         threshold: float = NEAR_DUPLICATE_MAD) -> list[tuple[int, int]]:
    """Pairs (i, j) whose thumbnails differ by a mean absolute difference < threshold.

    All pairs are screened with a matrix product (Euclidean distance, cheap), and only the
    candidates are checked with the exact mean absolute difference. RMS >= MAD always, so
    a generous RMS bound of 3x the threshold keeps every pair except those whose whole
    difference sits in a few pixels.
    """
    same = other is None
    other = thumbs if other is None else other
    sq_a = (thumbs**2).sum(1)
    sq_b = (other**2).sum(1)
    dims = thumbs.shape[1]
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(thumbs), 512):
        block = thumbs[start:start + 512]
        d2 = sq_a[start:start + 512, None] + sq_b[None, :] - 2.0 * block @ other.T
        rows, cols = np.nonzero(d2 / dims < (3 * threshold) ** 2)
        for r, c in zip(rows + start, cols, strict=True):
            if same and c <= r:
                continue
            if np.abs(thumbs[r] - other[c]).mean() < threshold:
                pairs.append((int(r), int(c)))
    return pairs


def duplicate_groups(pixels: np.ndarray) -> np.ndarray:
    """A group id per image; near-duplicates share one (union-find over the pairs)."""
    parent = np.arange(len(pixels))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in near_duplicate_pairs(thumbnails(pixels)):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(i) for i in range(len(pixels))])


def grouped_stratified_split(labels: np.ndarray, groups: np.ndarray, fraction: float,
                             seed: int, max_val_group: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, val_index): about ``fraction`` of each class in validation, whole
    groups only. A group goes with the class most of its members have.

    Chaining near-duplicates links many dark, similar slices into a few large groups
    (hundreds of images in this dataset); those always stay in training, where they
    cannot upset the class balance of a validation split of a few hundred images.
    """
    rng = np.random.default_rng(seed)
    val_mask = np.zeros(len(labels), dtype=bool)
    unique_groups = np.unique(groups)
    group_label = {g: np.bincount(labels[groups == g]).argmax() for g in unique_groups}
    for cls in np.unique(labels):
        target = fraction * np.sum(labels == cls)
        members = [g for g in unique_groups if group_label[g] == cls
                   and np.sum(groups == g) <= max_val_group]
        rng.shuffle(members)
        taken = 0
        for g in members:
            if taken >= target:
                break
            in_group = groups == g
            val_mask |= in_group
            taken += int(in_group.sum())
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def held_out_groups(groups: list[str] | np.ndarray, fraction: float, seed: int) -> set[str]:
    """The named groups (``fraction`` of them, seeded) a run holds out for validation.

    Used for the extra tumour slices, whose near-duplicate groups come listed with them;
    evaluation recomputes the same set from a model's recipe.
    """
    names = np.unique(np.asarray(groups))
    rng = np.random.default_rng(seed)
    return set(rng.choice(names, round(len(names) * fraction), replace=False).tolist())
