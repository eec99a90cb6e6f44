"""The validation split: near-duplicates grouped, whole groups on one side, stratified
by class, seeded. Pure NumPy; no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageDraw

from braintumor.training.split import (
    NEAR_DUPLICATE_MAD,
    duplicate_groups,
    grouped_stratified_split,
    near_duplicate_pairs,
    thumbnails,
)
from conftest import scan_like

#: Centres of one big bright disc; far enough apart that no two discs overlap.
DISC_CENTRES = [(16, 16), (48, 16), (16, 48), (48, 48), (32, 32)]


def distinct_scan(index: int, size: int = 64) -> np.ndarray:
    """A scan-like picture with one big bright disc at a position of its own.

    Bare ``scan_like`` pictures of different seeds differ by a mean absolute difference
    of only about 9-15 (the same oval), so each picture gets a disc that sets it clearly
    apart from the others.
    """
    image = scan_like((size, size), seed=index)
    cx, cy = (c * size / 64 for c in DISC_CENTRES[index])
    r = 0.2 * size
    ImageDraw.Draw(image).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    return np.asarray(image)


def noisy_copy(pixels: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(pixels + rng.normal(0, sigma, pixels.shape), 0, 255).astype(np.uint8)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """The split's own distance: mean absolute difference of 64x64 thumbnails."""
    ta, tb = thumbnails(np.stack([a, b]))
    return float(np.abs(ta - tb).mean())


# --- duplicate_groups ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 96, 32])
def test_copies_and_noisy_copies_share_a_group_others_do_not(size: int) -> None:
    originals = [distinct_scan(i, size) for i in range(len(DISC_CENTRES))]
    exact = originals[0].copy()
    noisy = noisy_copy(originals[1], sigma=5, seed=7)
    brighter = np.clip(originals[2].astype(int) + 4, 0, 255).astype(np.uint8)
    # the premises: copies are near-duplicates by the rule, the originals clearly are not
    assert mad(noisy, originals[1]) < NEAR_DUPLICATE_MAD
    assert mad(brighter, originals[2]) < NEAR_DUPLICATE_MAD
    assert min(mad(a, b) for i, a in enumerate(originals) for b in originals[i + 1:]) > 20

    pixels = np.stack([*originals, exact, noisy, brighter])
    groups = duplicate_groups(pixels)

    assert groups.shape == (len(pixels),)
    assert groups[5] == groups[0]
    assert groups[6] == groups[1]
    assert groups[7] == groups[2]
    assert len(set(groups[:5].tolist())) == 5  # the five originals stay apart


def test_a_clearly_changed_copy_is_not_a_duplicate() -> None:
    base = distinct_scan(0)
    changed = noisy_copy(base, sigma=40, seed=1)
    assert mad(base, changed) > 2 * NEAR_DUPLICATE_MAD
    groups = duplicate_groups(np.stack([base, changed]))
    assert groups[0] != groups[1]


def test_near_duplicates_chain_into_one_group() -> None:
    """a~b and b~c put a and c together even though a and c are not near-duplicates."""
    a = distinct_scan(3).astype(int)
    b = np.clip(a + 6, 0, 255).astype(np.uint8)
    c = np.clip(a + 12, 0, 255).astype(np.uint8)
    a = a.astype(np.uint8)
    assert mad(a, b) < NEAR_DUPLICATE_MAD and mad(b, c) < NEAR_DUPLICATE_MAD
    assert mad(a, c) >= NEAR_DUPLICATE_MAD
    other = distinct_scan(4)

    groups = duplicate_groups(np.stack([c, other, a, b]))

    assert groups[0] == groups[2] == groups[3]
    assert groups[1] != groups[0]
    # a group id is the index of one of its members, the lowest one
    assert groups[0] == 0 and groups[1] == 1


def test_pairs_are_found_across_the_512_row_blocks() -> None:
    rng = np.random.default_rng(0)
    thumbs = rng.uniform(0, 255, (700, 64 * 64)).astype(np.float32)
    thumbs[650] = thumbs[3] + 2.0  # across blocks
    thumbs[600] = thumbs[520]  # both in the second block
    pairs = near_duplicate_pairs(thumbs)
    assert sorted(pairs) == [(3, 650), (520, 600)]


def test_pairs_against_another_set() -> None:
    rng = np.random.default_rng(1)
    thumbs = rng.uniform(0, 255, (5, 64 * 64)).astype(np.float32)
    other = rng.uniform(0, 255, (4, 64 * 64)).astype(np.float32)
    other[2] = thumbs[4] - 3.0
    assert near_duplicate_pairs(thumbs, other) == [(4, 2)]


# --- grouped_stratified_split --------------------------------------------------------------


def synthetic_groups(seed: int, big: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """(labels, groups): ~480 images in groups of 1-5 (a few with a stray minority label)
    and, per class, one group of ``big`` members."""
    rng = np.random.default_rng(seed)
    labels: list[int] = []
    groups: list[int] = []
    gid = 0
    for cls in range(4):
        for _ in range(40):
            size = int(rng.integers(1, 6))
            members = [cls] * size
            if size >= 3 and rng.random() < 0.3:
                members[-1] = (cls + 1) % 4  # a mixed group; its majority is still cls
            labels += members
            groups += [gid] * size
            gid += 1
        labels += [cls] * big
        groups += [gid] * big
        gid += 1
    order = rng.permutation(len(labels))  # members of a group need not be adjacent
    return np.array(labels)[order], np.array(groups)[order] * 7 + 3  # ids need not be 0..G


def assert_whole_groups(groups: np.ndarray, train: np.ndarray, val: np.ndarray) -> None:
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(groups)))
    assert not set(groups[train].tolist()) & set(groups[val].tolist())


@pytest.mark.parametrize("seed", range(8))
def test_no_group_on_both_sides(seed: int) -> None:
    labels, groups = synthetic_groups(seed)
    train, val = grouped_stratified_split(labels, groups, 0.15, seed=seed)
    assert len(val) > 0
    assert_whole_groups(groups, train, val)


def test_every_class_gets_about_its_fraction() -> None:
    labels, groups = synthetic_groups(3)
    sizes = {g: int(np.sum(groups == g)) for g in np.unique(groups)}
    for fraction in (0.1, 0.15, 0.3):
        train, val = grouped_stratified_split(labels, groups, fraction, seed=11)
        assert_whole_groups(groups, train, val)
        for cls in range(4):
            in_class = np.sum(labels == cls)
            # whole groups are taken until the class's target is reached: the last group
            # (at most 5 images, one of them maybe of another class) may overshoot it
            majority = [g for g in np.unique(groups[val])
                        if np.bincount(labels[groups == g]).argmax() == cls]
            taken = sum(sizes[g] for g in majority)
            assert fraction * in_class <= taken < fraction * in_class + 5
            assert abs(np.sum(labels[val] == cls) / in_class - fraction) < 0.05


def test_same_seed_same_split_other_seed_other_split() -> None:
    labels, groups = synthetic_groups(0)
    first = grouped_stratified_split(labels, groups, 0.15, seed=5)
    again = grouped_stratified_split(labels, groups, 0.15, seed=5)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    others = [grouped_stratified_split(labels, groups, 0.15, seed=s)[1] for s in (6, 7, 8)]
    for other in others:
        assert not np.array_equal(np.sort(other), np.sort(first[1]))


@pytest.mark.parametrize("seed", range(6))
def test_groups_larger_than_max_val_group_stay_in_training(seed: int) -> None:
    labels, groups = synthetic_groups(seed, big=25)
    big = [g for g in np.unique(groups) if np.sum(groups == g) == 25]
    assert len(big) == 4
    train, val = grouped_stratified_split(labels, groups, 0.3, seed=seed, max_val_group=20)
    assert not set(big) & set(groups[val].tolist())
    assert set(big) <= set(groups[train].tolist())


def test_big_groups_may_go_to_validation_when_allowed() -> None:
    """The limit is what keeps them out: with a higher one some do reach validation."""
    labels, groups = synthetic_groups(0, big=25)
    big = {g for g in np.unique(groups) if np.sum(groups == g) == 25}
    reached = set()
    for seed in range(6):
        _, val = grouped_stratified_split(labels, groups, 0.3, seed=seed, max_val_group=30)
        reached |= big & set(groups[val].tolist())
    assert reached


def test_a_group_goes_with_its_majority_class() -> None:
    # class 0: one group of three (two 0s and a 1); class 1: six singletons
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1])
    groups = np.array([0, 0, 0, 1, 2, 3, 4, 5, 6])
    # half of class 0 (one of its two images) can only be met by the mixed group
    train, val = grouped_stratified_split(labels, groups, 0.5, seed=0)
    assert {0, 1, 2} <= set(val.tolist())
    # class 1 took singletons until 0.5 * 7 = 3.5 were reached: 4 of them
    assert len(set(val.tolist()) - {0, 1, 2}) == 4
    assert_whole_groups(groups, train, val)
