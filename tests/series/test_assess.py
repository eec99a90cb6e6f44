"""Which slices show enough brain to be judged (series.assess): phantoms, nilearn's MNI152
template, and the real volumes of BRAINTUMOR_VOLUMES when it is set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from braintumor.series.assess import (
    MIN_BRAIN_CM2,
    MIN_BRAIN_SHARE,
    BrainAreas,
    assessed_slices,
    brain_area_cm2,
    brain_areas_cm2,
    otsu_threshold,
    reduce_slice,
)
from braintumor.series.nifti import series_from_nifti
from series_helpers import mni_template_path, nifti_bytes

LIMITS = {"max_slices": 1000, "max_bytes": 1 << 30, "max_pixels": 10**8}


def ellipse(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float]
            ) -> np.ndarray:
    y, x = np.ogrid[:shape[0], :shape[1]]
    return ((y - centre[0]) / radii[0]) ** 2 + ((x - centre[1]) / radii[1]) ** 2 <= 1.0


def head_slice(brain_mm: tuple[float, float], mm: float = 1.0, size_mm: int = 240,
               seed: int = 0) -> np.ndarray:
    """An axial T1-like slice at ``mm`` per pixel: a grey brain of semi-axes ``brain_mm``
    (ventricles dark), a dark skull 4 mm thick, a bright scalp 5 mm thick, noise."""
    n = round(size_mm / mm)
    shape, centre = (n, n), (n / 2, n / 2)
    rng = np.random.default_rng(seed)
    picture = np.zeros(shape, np.float64)
    a, b = (r / mm for r in brain_mm)
    skull, scalp = 4.0 / mm, 5.0 / mm
    picture[ellipse(shape, centre, (a + skull + scalp, b + skull + scalp))] = 230  # scalp
    picture[ellipse(shape, centre, (a + skull, b + skull))] = 25  # skull
    picture[ellipse(shape, centre, (a, b))] = 130  # brain
    picture[ellipse(shape, centre, (a * 0.25, b * 0.15))] = 30  # ventricles
    picture += rng.normal(0, 8, shape)
    return np.clip(picture, 0, 255).astype(np.uint8)


def test_otsu_splits_two_levels():
    picture = np.zeros((40, 40), np.uint8)
    picture[10:30, 10:30] = 200
    assert 0 <= otsu_threshold(picture) < 200
    assert otsu_threshold(np.zeros((4, 4), np.uint8)) == 0


def test_a_mid_brain_slice_measures_its_brain_not_its_head():
    picture = head_slice((85, 70))  # 17 x 14 cm: pi/4 * 17 * 14 = 187 cm2
    area = brain_area_cm2(picture, 1.0)
    assert area == pytest.approx(np.pi * 8.5 * 7.0, rel=0.1)
    head = np.pi * (8.5 + 0.9) * (7.0 + 0.9)
    assert area < 0.85 * head


def test_the_area_follows_the_pixel_spacing_and_the_resolution():
    coarse = brain_area_cm2(head_slice((85, 70), mm=2.0), 2.0)
    fine = brain_area_cm2(head_slice((85, 70), mm=0.5), 0.5)
    assert coarse == pytest.approx(fine, rel=0.1) == pytest.approx(187, rel=0.12)
    picture = head_slice((85, 70))
    # the same pixels said to be half the size: a quarter of the area
    assert brain_area_cm2(picture, 0.5) == pytest.approx(brain_area_cm2(picture, 1.0) / 4,
                                                         rel=0.1)
    reduced, mm = reduce_slice(picture, 0.5)
    assert mm == pytest.approx(2.0) and reduced.shape == (60, 60)


def test_a_vertex_cap_and_a_slice_outside_the_head_are_not_assessed():
    cap = brain_area_cm2(head_slice((22, 18)), 1.0)  # about 12 cm2 of brain
    assert cap < MIN_BRAIN_CM2
    rng = np.random.default_rng(3)
    outside = np.clip(rng.normal(6, 4, (240, 240)), 0, 255).astype(np.uint8)
    assert brain_area_cm2(outside, 1.0) < 1.0
    assert brain_area_cm2(np.zeros((64, 64), np.uint8), 1.0) == 0.0
    areas = [brain_area_cm2(head_slice((r, r * 0.8)), 1.0) for r in (20, 40, 70, 85)]
    assert assessed_slices(areas, spacing_known=True) == [False, True, True, True]


def test_a_dim_brain_under_a_bright_scalp_and_tumour_is_found(monkeypatch):
    """A T1c-like slice filling the picture: the brain (70) under the slice's Otsu level,
    which a bright scalp and an enhancing tumour (250) took; found again at the lower of
    three levels."""
    import braintumor.series.assess as assess

    shape, centre = (200, 200), (100, 100)
    picture = np.zeros(shape, np.float64)
    picture[ellipse(shape, centre, (98, 83))] = 250  # scalp
    picture[ellipse(shape, centre, (89, 74))] = 20  # skull
    picture[ellipse(shape, centre, (85, 70))] = 70  # brain
    picture[ellipse(shape, (80, 120), (18, 18))] = 240  # enhancing tumour
    picture = np.clip(picture + np.random.default_rng(1).normal(0, 6, shape), 0, 255)
    picture = picture.astype(np.uint8)
    assert otsu_threshold(picture) > 70
    assert brain_area_cm2(picture, 1.0) == pytest.approx(np.pi * 8.5 * 7.0, rel=0.1)
    monkeypatch.setattr(assess, "RETRY_BELOW", 0.0)  # without the second look
    assert brain_area_cm2(picture, 1.0) < 0.3 * np.pi * 8.5 * 7.0


def test_without_a_pixel_spacing_the_share_of_the_largest_decides():
    assert assessed_slices([10.0, 60.0, 100.0, 34.0, None], spacing_known=False) == \
        [False, True, True, False, False]
    assert MIN_BRAIN_SHARE == 0.35
    assert assessed_slices([None, None], spacing_known=False) == [False, False]
    assert assessed_slices([0.0, 0.0], spacing_known=False) == [False, False]


def test_pictures_without_spacing_get_an_assumed_field_of_view():
    picture = Image.fromarray(head_slice((85, 70), mm=0.5))  # 480 px over 240 mm
    assert brain_area_cm2(picture) == pytest.approx(brain_area_cm2(picture, 0.5), rel=0.01)


def head_and_neck(mm: float = 2.0) -> tuple[np.ndarray, int]:
    """(z, y, x) phantom at ``mm``: a brain ellipsoid in a closed skull and scalp, a neck
    of soft tissue below joined to the scalp, a thin cord through the foramen magnum.
    Returns the volume and the index of the lowest slice holding brain."""
    n, depth = round(200 / mm), round(220 / mm)
    z, y, x = np.ogrid[:depth, :n, :n]
    c = n / 2
    zc = 140 / mm  # brain centre, 140 mm above the bottom
    rz, ry, rx = 60 / mm, 85 / mm, 70 / mm

    def inside(grow: float) -> np.ndarray:
        g = grow / mm
        return (((z - zc) / (rz + g)) ** 2 + ((y - c) / (ry + g)) ** 2
                + ((x - c) / (rx + g)) ** 2) <= 1.0

    volume = np.zeros((depth, n, n), np.float64)
    neck = ((y - c) / (45 / mm)) ** 2 + ((x - c) / (55 / mm)) ** 2 <= 1.0
    volume[: round(95 / mm)] = np.where(neck, 150, 0)[0]  # the neck, up to 95 mm
    volume[inside(9.0)] = 220  # scalp
    volume[inside(4.0)] = 25  # skull
    volume[inside(0.0)] = 130  # brain
    cord = ((y - c) / (4 / mm)) ** 2 + ((x - c) / (4 / mm)) ** 2 <= 1.0
    volume[round(70 / mm): round(zc), :, :][:, cord[0]] = 130
    rng = np.random.default_rng(5)
    volume = np.clip(volume + rng.normal(0, 6, volume.shape), 0, 255).astype(np.uint8)
    return volume, int(np.ceil(zc - rz))


def test_a_volume_is_masked_in_3d_so_the_neck_is_not_brain():
    volume, lowest = head_and_neck()
    in_3d = brain_areas_cm2(volume, 2.0, slice_mm=2.0)
    one_by_one = brain_areas_cm2(volume, 2.0)
    neck = slice(5, lowest - 1)  # the neck, below the brain
    assert max(in_3d[neck]) < 1.0  # below the skull base: no brain
    assert min(one_by_one[neck]) > MIN_BRAIN_CM2  # one slice alone cannot tell
    middle = round(140 / 2.0)
    assert in_3d[middle] == pytest.approx(np.pi * 8.5 * 7.0, rel=0.1)
    flags = assessed_slices(in_3d, spacing_known=True)
    assessed = [i for i, f in enumerate(flags) if f]
    assert assessed == list(range(assessed[0], assessed[-1] + 1))  # one run
    assert lowest <= assessed[0] and assessed[-1] < len(volume) - 1


def test_brain_areas_collects_slices_and_masks_a_volume_in_3d():
    volume, _ = head_and_neck()
    areas = BrainAreas(pixel_mm=2.0)
    for picture in volume:
        areas.add(Image.fromarray(picture))
    assert areas.areas(2.0) == brain_areas_cm2(volume, 2.0, slice_mm=2.0)
    assert areas.areas(None) == brain_areas_cm2(volume, 2.0)  # no spacing: one by one
    assert areas.areas(5.0) == brain_areas_cm2(volume, 2.0)  # too thick for 3-D
    assert BrainAreas(None).areas(1.0) == []


def mni_series(data: bytes | None = None):
    data = data if data is not None else Path(mni_template_path()).read_bytes()
    volume = series_from_nifti(data, **LIMITS)
    areas = BrainAreas(volume.pixel_mm)
    for item in volume.slices:
        areas.add(item.load().grey)
    return volume, areas.areas(volume.spacing_mm)


def test_the_mni_template_brain_is_assessed_from_the_cerebellum_to_below_the_vertex():
    volume, areas = mni_series()
    assert volume.pixel_mm == 1.0 and volume.spacing_mm == 1.0 and len(areas) == 189
    flags = assessed_slices(areas, spacing_known=True)
    assessed = [i for i, f in enumerate(flags) if f]
    # template z runs -72..116 mm: the brain spans about -70..+78, the cerebrum's
    # largest section (about 200 cm2, a large average brain) near z = 0
    assert 120 <= len(assessed) <= 150
    assert assessed == list(range(assessed[0], assessed[-1] + 1))
    low, high = (volume.slices[i].position for i in (assessed[0], assessed[-1]))
    assert -65 <= low <= -45 and 55 <= high <= 80
    assert 170 <= max(areas) <= 230
    assert all(a < 1.0 for a in areas[-30:])  # above the head


def test_the_skull_stripped_template_is_assessed_alike():
    """The same brain without skull and scalp (grey + white matter maps of the template):
    the judge of "enough brain" must not depend on skull-stripping."""
    import nibabel as nib

    template = nib.load(mni_template_path())
    folder = Path(mni_template_path()).parent
    brain = sum(np.asarray(nib.load(folder / f"mni_icbm152_{t}_tal_nlin_sym_09a_converted"
                                              ".nii.gz").dataobj, dtype=np.float32)
                for t in ("gm", "wm")) > 0.3
    values = np.asarray(template.dataobj, dtype=np.float32) * brain
    _, full = mni_series()
    _, stripped = mni_series(nifti_bytes(values, template.affine))
    a = assessed_slices(full, spacing_known=True)
    b = assessed_slices(stripped, spacing_known=True)
    assert abs(sum(a) - sum(b)) <= 0.15 * sum(a)
    assert sum(x != y for x, y in zip(a, b, strict=True)) <= 0.15 * sum(a)


# ---- the real volumes (../shared/datasets/volumes): never copied into the project --------

def volumes_folder() -> Path:
    folder = os.environ.get("BRAINTUMOR_VOLUMES")
    if not folder or not (Path(folder) / "manifest.tsv").is_file():
        pytest.skip("BRAINTUMOR_VOLUMES is not set to a volumes folder")
    return Path(folder)


def real(relative: str):
    data = (volumes_folder() / relative).read_bytes()
    return mni_series(data)


def test_a_healthy_ixi_head_is_assessed_through_the_brain_not_the_neck():
    _, areas = real("healthy/IXI202-HH-1526/IXI202-HH-1526_T1.nii.gz")
    flags = assessed_slices(areas, spacing_known=True)
    assessed = [i for i, f in enumerate(flags) if f]
    # 120 slices of 2 mm from the neck to above the head; the brain is about 110 mm
    assert 45 <= len(assessed) <= 70
    assert not any(flags[:35])  # neck and face
    assert not any(flags[-15:])  # vertex and above
    assert 120 <= max(areas) <= 200


@pytest.mark.parametrize("relative", ["healthy/NiChartDemo-Subj14/Subj14_T1.nii.gz",
                                      "healthy/NiChartDemo-Subj14/Subj14_FL.nii.gz"])
def test_an_elderly_head_with_a_bright_scalp_is_assessed_through_its_brain(relative):
    """The brain darker than the volume's Otsu level (atrophy, a bright scalp): found at
    the lower of three levels, not left to a few slices of white matter."""
    _, areas = real(relative)
    flags = assessed_slices(areas, spacing_known=True)
    assert sum(flags) >= 55 and 90 <= max(areas) <= 200


def test_a_glioma_volume_is_assessed_where_its_tumour_is():
    case = "tumour/Brats18_CBICA_ABM_1/Brats18_CBICA_ABM_1_"
    _, areas = real(case + "t1ce.nii.gz")
    flags = assessed_slices(areas, spacing_known=True)
    assert 95 <= sum(flags) <= 130 and 150 <= max(areas) <= 200
    # the label map sliced as its image is (a fixed window): >= 1 cm2 of tumour
    label = series_from_nifti((volumes_folder() / (case + "seg.nii.gz")).read_bytes(),
                              window=(0.0, 1.0), **LIMITS)
    tumour = [int((np.asarray(s.load().grey) > 0).sum()) >= 100 for s in label.slices]
    with_tumour = [f for f, t in zip(flags, tumour, strict=True) if t]
    assert with_tumour and sum(with_tumour) >= 0.9 * len(with_tumour)
