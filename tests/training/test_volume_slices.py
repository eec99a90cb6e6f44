"""The volumes' slices as training examples (training.volumes), and how they weigh in the
collection-balanced sampling (training.run): a synthetic volumes folder whose right
labels are known (tests/evaluation/volume_helpers)."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.classes import DEFAULT_CLASS_NAMES
from braintumor.datasets.folders import ImageSet
from braintumor.training.recipe import TrainConfig
from braintumor.training.run import VOLUMES_COLLECTION, _with_volume_slices
from braintumor.training.volumes import (
    MIN_TUMOUR_MM2,
    load_volume_slices,
    mirrored_halves,
)
from evaluation.volume_helpers import SLICES, TUMOUR_SLICES, head_plane, volumes_folder

NAMES = list(DEFAULT_CLASS_NAMES)
SIZE = (64, 64)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("volumes")
    return root, volumes_folder(root, ("train", "val"))


def test_healthy_heads_whole_and_skull_stripped_tumour_slices_by_their_label(folder):
    root, cases = folder
    part = load_volume_slices(root, NAMES, SIZE, "head", ("train",))
    assert set(part.cases) == set(cases["train"].values())  # the train cases only
    healthy = [i for i, c in enumerate(part.cases) if c == cases["train"]["healthy"]]
    variants = {part.paths[i].split("#")[1].split(":")[0] for i in healthy}
    assert variants == {"head", "brain"}
    assert {NAMES[part.labels[i]] for i in healthy} == {"No Tumor"}
    assert not part.outlines[healthy].any()  # a healthy slice's outline is empty
    tumour = [i for i, c in enumerate(part.cases)
              if c == cases["train"]["tumour"] and "#" not in part.paths[i]]
    gliomas = [i for i in tumour if NAMES[part.labels[i]] == "Glioma"]
    # slices whose core is >= 1 cm2 at 1.5 mm voxels: sides of 8 px and more
    big = [k for k, (side, _) in TUMOUR_SLICES.items() if side * side * 2.25 >= MIN_TUMOUR_MM2]
    assert sorted(int(part.paths[i].rsplit(":", 1)[1]) for i in gliomas) == big
    assert all(part.outlines[i].any() for i in gliomas)
    assert len(tumour) - len(gliomas) < SLICES  # slices near the tumour are left out
    assert part.pixels.shape[1:] == SIZE and part.pixels.dtype == np.uint8


@pytest.mark.parametrize("scheme", ["one", "per-variant"])
def test_the_volumes_weigh_as_one_collection_or_one_per_variant(folder, scheme):
    root, _ = folder
    images = ImageSet(np.zeros((2, *SIZE), np.uint8), np.array([0, 2]), ["a", "b"], "two")
    config = TrainConfig(data="unused", out="unused", size=SIZE[0], framing="head",
                         volumes=str(root), cache_dir="", volume_collections=scheme)
    merged, train, val, full, outlines = _with_volume_slices(
        config, images, np.array([0]), np.array([1]), np.ones(2, bool), None,
        collections := ["figshare", "br35h-no"])
    assert len(merged) == len(collections) == len(full) == len(outlines)
    assert len(train) + len(val) == len(merged)
    added = set(collections[2:])
    if scheme == "one":
        assert added == {VOLUMES_COLLECTION}
    else:
        assert added == {f"{VOLUMES_COLLECTION}:{v}" for v in ("head", "brain", "tumour")}


def _lateral_tumour_volume(shift: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, coded labels, affine): a brain whose midline is ``shift`` voxels off the
    middle, a bright lesion in the high-index half on slices 4-7 (oedema around it)."""
    plane = np.roll(head_plane((96, 80)), shift, axis=0)  # axis 0 is left-right
    image = np.stack([plane] * 12, axis=-1)
    ramp = np.linspace(1, 5, 48 + shift)[:, None, None]
    image[:48 + shift] += ramp * (image[:48 + shift] > 0)  # the two sides differ
    coded = np.zeros(image.shape, np.float32)
    image[70:80, 30:40, 4:8] = 400.0
    coded[68:82, 28:42, 4:8] = 1.0
    coded[70:80, 30:40, 4:8] = 2.0
    return image, coded, np.diag([1.5, 1.5, 3.0, 1.0])  # RAS: index 0 grows to the right


def test_each_hemisphere_is_mirrored_across_the_brains_midline_with_its_own_labels():
    image, coded, affine = _lateral_tumour_volume(shift=3)
    sides = {side: (volume, labels) for side, volume, labels
             in mirrored_halves(image, coded, affine, (1.5, 1.5, 3.0))}
    assert set(sides) == {"left", "right"}
    clear, clear_labels = sides["left"]  # the low-index half: no lesion
    assert np.array_equal(clear, clear[::-1])  # a whole, symmetric brain
    # midline at 51 (the oval's centre, 47.5, moved by 3): 45 voxels on each side of it
    assert clear.shape == (90, 80, 12)
    assert np.array_equal(clear[:45], image[6:51])
    assert not clear_labels.any() and clear.max() < 400.0
    ill, ill_labels = sides["right"]  # the lesion's half, mirrored onto both sides
    assert ill.max() == 400.0 and np.array_equal(ill, ill[::-1])
    assert sorted(np.flatnonzero(ill_labels.any(axis=(0, 1)))) == [4, 5, 6, 7]


def test_a_label_at_the_midline_counts_on_both_sides():
    image, coded, affine = _lateral_tumour_volume(shift=0)
    coded[46:50, 20:24, 9] = 1.0  # oedema across the midline on slice 9
    for _, _, labels in mirrored_halves(image, coded, affine, (1.5, 1.5, 3.0)):
        assert labels[..., 9].any()


def test_with_mirrored_a_tumour_volumes_clear_hemispheres_give_no_tumour_slices(folder):
    root, cases = folder
    assert not any("#mirrored-" in p for p in
                   load_volume_slices(root, NAMES, SIZE, "head", ("train",)).paths)
    part = load_volume_slices(root, NAMES, SIZE, "head", ("train",), mirrored=True)
    mirrored = [i for i, p in enumerate(part.paths) if "#mirrored-" in p]
    assert mirrored and {part.cases[i] for i in mirrored} == {cases["train"]["tumour"]}
    assert {NAMES[part.labels[i]] for i in mirrored} == {"No Tumor"}
    assert not part.outlines[mirrored].any()
    # the synthetic tumour sits on the midline: its slices and those within 10 mm of a
    # label (3 mm spacing: 3 slices) are on neither side
    kept = {int(part.paths[i].rsplit(":", 1)[1]) for i in mirrored}
    labelled = set(TUMOUR_SLICES)
    assert not kept & set(range(min(labelled) - 3, max(labelled) + 4))
    assert kept
