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
from braintumor.training.volumes import MIN_TUMOUR_MM2, load_volume_slices
from evaluation.volume_helpers import SLICES, TUMOUR_SLICES, volumes_folder

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
    tumour = [i for i, c in enumerate(part.cases) if c == cases["train"]["tumour"]]
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
