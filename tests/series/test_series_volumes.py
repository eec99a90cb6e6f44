"""Volumes as people send them: z-scored NIfTI with a background inside the brain's range,
4-D files, volumes with no brain; the assessed and supporting slices in the answer."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from braintumor.imaging import percentile_window
from braintumor.series.nifti import PERCENTILES, background_fill, series_from_nifti
from series_helpers import assert_error, mni_template_path, nifti_bytes, series_files

URL = "/api/classify-series"
LIMITS = {"max_slices": 1000, "max_bytes": 1 << 30, "max_pixels": 10**8}


@pytest.fixture(scope="module")
def client(tiny_settings, tiny_model):
    from braintumor.api import create_app

    return create_app(tiny_settings, model=tiny_model).test_client()


def post(client, files: list[tuple[bytes, str]]):
    form = {"file": [(io.BytesIO(data), name) for data, name in files]}
    return client.post(URL, data=form, content_type="multipart/form-data")


@pytest.fixture(scope="module")
def template():
    """nilearn's MNI152 T1 (a full head) and its brain (grey + white matter maps)."""
    import nibabel as nib

    image = nib.load(mni_template_path())
    folder = Path(mni_template_path()).parent
    brain = sum(np.asarray(nib.load(folder / f"mni_icbm152_{t}_tal_nlin_sym_09a_converted"
                                              ".nii.gz").dataobj, dtype=np.float32)
                for t in ("gm", "wm")) > 0.3
    return np.asarray(image.dataobj, dtype=np.float32), brain, image.affine


def z_scored(values: np.ndarray, brain: np.ndarray, background: str) -> np.ndarray:
    """Zero mean and unit variance inside the brain; the rest at 0 (the z-score of the
    brain's mean) or at the brain's minimum, as normalising pipelines leave it."""
    inside = values[brain]
    z = np.zeros_like(values)
    z[brain] = (inside - inside.mean()) / inside.std()
    if background == "minimum":
        z[~brain] = z[brain].min()
    return z


def pictures(data: bytes, every: int = 12) -> list[np.ndarray]:
    volume = series_from_nifti(data, **LIMITS)
    return [np.asarray(s.load().grey) for s in volume.slices[::every]]


def test_a_background_left_at_zero_is_shown_black_like_one_at_the_minimum(template):
    values, brain, affine = template
    at_zero = z_scored(values, brain, "zero")
    at_minimum = z_scored(values, brain, "minimum")
    assert at_zero.min() < 0 < at_zero.max()
    assert background_fill(at_zero) == 0.0
    assert background_fill(at_minimum) is None  # already the bottom of the range
    zero = pictures(nifti_bytes(at_zero, affine))
    minimum = pictures(nifti_bytes(at_minimum, affine))
    for a, b in zip(zero, minimum, strict=True):
        np.testing.assert_array_equal(a, b)
    middle = zero[len(zero) // 2]
    assert middle[:5, :5].max() == 0 and middle.max() > 200  # black around a windowed brain


def test_ordinary_volumes_keep_their_window(template):
    values, _, affine = template
    assert background_fill(values) is None  # a raw head: background 0, its minimum
    rng = np.random.default_rng(0)
    noisy = np.clip(values + rng.integers(0, 3, values.shape), 0, None).astype(np.int16)
    assert background_fill(noisy.astype(np.float32)) is None  # a noise floor is no fill
    data = nifti_bytes(values, affine)
    fixed = series_from_nifti(data, window=percentile_window(values, PERCENTILES), **LIMITS)
    own = series_from_nifti(data, **LIMITS)
    for k in (40, 90, 140):
        np.testing.assert_array_equal(np.asarray(own.slices[k].load().grey),
                                      np.asarray(fixed.slices[k].load().grey))


def test_a_z_scored_volume_is_answered_with_its_brain_assessed(client, template):
    values, brain, affine = template
    body = post(client, [(nifti_bytes(z_scored(values, brain, "zero"), affine), "z.nii.gz")])
    assert body.status_code == 200, body.get_json()
    body = body.get_json()
    summary = body["summary"]
    assert 100 <= summary["assessed_slices"] <= 160
    assessed = [s["index"] for s in body["slices"] if s["assessed"]]
    assert assessed == list(range(assessed[0], assessed[-1] + 1))
    assert all(s["brain_area_cm2"] is not None for s in body["slices"])


def test_a_4d_file_of_several_volumes_says_what_to_send(client):
    data = nifti_bytes(np.ones((20, 20, 4, 2), dtype=np.int16))
    body = assert_error(post(client, [(data, "dwi.nii.gz")]), "INVALID_SERIES", 400)
    message = body["error"]["message"]
    assert "4-D (2 volumes)" in message and "own file" in message
    body = assert_error(post(client, [(nifti_bytes(np.ones((8, 8, 4, 1, 2), np.int16)),
                                       "v.nii")]), "INVALID_SERIES", 400)
    assert "5-D" in body["error"]["message"]


def test_a_volume_with_no_brain_is_refused_as_before(client):
    body = assert_error(post(client, [(nifti_bytes(np.zeros((40, 40, 10), np.int16)),
                                       "empty.nii.gz")]), "NOT_BRAIN_MRI", 422)
    assert "None of the series' 10 slices looks like a brain MRI" in body["error"]["message"]


def small_heads(count: int, size: int) -> list[Image.Image]:
    from conftest import scan_like

    return [scan_like((size, size), seed=80 + i) for i in range(count)]


def test_answered_slices_without_enough_brain_are_not_diagnosed(client):
    # 48 x 48 pixels of 0.9 mm: a head of about 8 cm2, a vertex cap at most
    body = assert_error(post(client, [(f, "a.dcm") for f in series_files(small_heads(3, 48))]),
                        "NOT_BRAIN_MRI", 422)
    message = body["error"]["message"]
    assert "3 answered slices" in message and "25 cm2 of brain" in message


def test_the_answer_lists_assessed_not_assessed_and_supporting_slices(client):
    big = small_heads(4, 128)  # about 70 cm2 each
    small = []  # about 6 cm2 in the same 128 x 128 pictures: a vertex cap
    for head in small_heads(2, 40):
        canvas = Image.new("L", (128, 128), 0)
        canvas.paste(head, (44, 44))
        small.append(canvas)
    files = series_files(big + small)
    body = post(client, [(f, "a.dcm") for f in files])
    assert body.status_code == 200, body.get_json()
    body = body.get_json()
    slices, summary = body["slices"], body["summary"]
    assert [s["assessed"] for s in slices] == [True] * 4 + [False] * 2
    assert all(s["brain_area_cm2"] > 25 for s in slices[:4])
    assert all(s["brain_area_cm2"] < 25 for s in slices[4:])
    assert summary["assessed_slices"] == 4 and summary["not_assessed"] == [4, 5]
    assert summary["assessed_slices"] + len(summary["not_assessed"]) == \
        summary["slices_answered"]
    calls = [s["index"] for s in slices if s["assessed"] and s["tumour_probability"] >= 50]
    assert summary["supporting_slices"] == (calls if len(calls) >= 2 else [])
    assert (summary["class"] != "No Tumor") == bool(summary["supporting_slices"])
    assert summary["key_slice"] in (summary["supporting_slices"] or range(4))
    if not summary["supporting_slices"]:
        assert summary["tumour_probability"] <= 49.0
    assert "support" in summary["rule"]


def enhanced_with_spacing(mm: float) -> bytes:
    """A two-frame enhanced MR file whose Pixel Measures sit in the shared groups."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedMRImageStorage

    from dicom_helpers import make_dicom

    def item(**groups: Dataset) -> Dataset:
        ds = Dataset()
        for name, value in groups.items():
            setattr(ds, name, Sequence([value]))
        return ds

    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    measures.PixelSpacing = [mm, mm]
    planes = []
    for z in (0.0, 5.0):
        plane = Dataset()
        plane.ImagePositionPatient = [0.0, 0.0, z]
        planes.append(item(PlanePositionSequence=plane))
    stack = np.stack([np.asarray(p, np.uint16) * 16 for p in small_heads(2, 64)])
    return make_dicom(stack, bits_stored=12, window=(2048.0, 4096.0),
                      sop_class=EnhancedMRImageStorage, extra={
        "SharedFunctionalGroupsSequence": Sequence([
            item(PlaneOrientationSequence=orientation, PixelMeasuresSequence=measures)]),
        "PerFrameFunctionalGroupsSequence": Sequence(planes)})


def test_pixel_spacing_comes_from_the_files():
    from braintumor.series.dicom_files import series_from_dicom_files
    from series_helpers import multi_frame_file

    files = series_files(small_heads(2, 64))
    volume = series_from_dicom_files(files, source="dicom", max_slices=10,
                                     max_pixels=10**7)
    assert [s.pixel_spacing for s in volume.slices] == [(0.9, 0.9)] * 2
    assert volume.pixel_mm == pytest.approx(0.9)
    data, _ = multi_frame_file()  # states no Pixel Spacing
    frames = series_from_dicom_files([data], source="dicom", max_slices=10,
                                     max_pixels=10**7)
    assert frames.pixel_mm is None
    assert series_from_dicom_files([enhanced_with_spacing(0.8)], source="dicom",
                                   max_slices=10, max_pixels=10**7).pixel_mm == 0.8
    anisotropic = series_from_nifti(nifti_bytes(np.ones((20, 30, 4), np.int16),
                                                np.diag([0.5, 1.0, 3.0, 1.0])), **LIMITS)
    assert anisotropic.slices[0].pixel_spacing == (0.5, 0.5)  # resampled square
    assert anisotropic.pixel_mm == 0.5


def test_a_z_scored_glioma_volume_is_answered_by_the_default_model():
    """A real BraTS T1c z-scored inside the brain, background left at 0 (BRAINTUMOR_VOLUMES):
    windowed as it came, its background was mid-grey and the whole volume refused."""
    import gzip

    import nibabel as nib

    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.model import load_model
    from braintumor.series import classify_series

    folder = os.environ.get("BRAINTUMOR_VOLUMES")
    if not folder or not (Path(folder) / "manifest.tsv").is_file():
        pytest.skip("BRAINTUMOR_VOLUMES is not set to a volumes folder")
    image = nib.load(Path(folder) / "tumour/Brats18_CBICA_ABM_1/Brats18_CBICA_ABM_1_t1ce.nii.gz")
    values = np.asarray(image.dataobj, dtype=np.float32)
    z = z_scored(values, values > 0, "zero")
    data = gzip.compress(nifti_bytes(z, image.affine, compress=False), compresslevel=1)
    settings = Settings()
    classifier = Classifier(load_model(settings.model), settings)
    body = classify_series(classifier, series_from_nifti(data, **LIMITS)).to_json()
    summary = body["summary"]
    assert summary["slices_answered"] >= 60 and summary["assessed_slices"] >= 60
