"""POST /api/classify-series with the test suite's tiny model: inputs, answers, refusals."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import encode
from dicom_helpers import PATIENT_VALUES, make_dicom
from series_helpers import (
    CORONAL,
    TIMESTAMP,
    assert_error,
    multi_frame_file,
    nifti_bytes,
    series_files,
    synthetic_pictures,
    zip_of,
)

URL = "/api/classify-series"


@pytest.fixture(scope="module")
def series_app(tiny_settings, tiny_model):
    from braintumor.api import create_app

    return create_app(tiny_settings, model=tiny_model)


@pytest.fixture
def client(series_app):
    return series_app.test_client()


@pytest.fixture(scope="module")
def five() -> list[bytes]:
    return series_files(synthetic_pictures(5, seed=40))


def post(client, files: list[tuple[bytes, str]]):
    form = {"file": [(io.BytesIO(data), name) for data, name in files]}
    return client.post(URL, data=form, content_type="multipart/form-data")


def ok(response) -> dict:
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True and TIMESTAMP.match(body["timestamp"])
    return body


def single(client, data: bytes, name: str = "scan.dcm") -> dict:
    response = client.post("/api/classify", data={"file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    return response.get_json()


def test_dicom_parts_in_any_order_are_ordered_by_position(client, five):
    shuffled = [(five[i], f"part{i}.dcm") for i in (3, 0, 4, 2, 1)]
    body = ok(post(client, shuffled))
    series = body["series"]
    assert series == {"source": "dicom", "slice_count": 5, "modality": "MR",
                      "orientation": "axial", "ordered_by": "position", "rows": 96,
                      "columns": 96, "slice_spacing_mm": 5.0, "files_ignored": 0}
    assert [s["index"] for s in body["slices"]] == [0, 1, 2, 3, 4]
    assert [s["position"] for s in body["slices"]] == [-40.0, -35.0, -30.0, -25.0, -20.0]
    # every slice answers what /api/classify answers for that file alone
    for answer, data in zip(body["slices"], five, strict=True):
        alone = single(client, data)
        assert answer["class"] == alone["prediction"]["class"]
        for name, value in alone["prediction"]["probabilities"].items():
            assert answer["probabilities"][name] == pytest.approx(value, abs=0.02)
        assert answer["ood"]["flagged"] == alone["ood"]["flagged"]
        assert answer["refused"] is False


def test_summary_and_key_slice_follow_the_rule(client, five):
    body = ok(post(client, [(data, "x.dcm") for data in five]))
    slices, summary, key = body["slices"], body["summary"], body["key_slice"]
    tumour = [s["tumour_probability"] for s in slices]
    assert summary["key_slice"] == key["index"]
    # the highest tumour probability (two decimals: neighbours may round to a tie)
    assert tumour[key["index"]] == pytest.approx(max(tumour), abs=0.011)
    assert summary["tumour_probability"] == tumour[key["index"]]
    assert summary["slices_answered"] == 5 and summary["slices_refused"] == 0
    counts = {name: sum(s["class"] == name for s in slices) for name in summary["class_counts"]}
    assert summary["class_counts"] == counts
    tumour_classes = {n: c for n, c in counts.items() if n != "No Tumor" and c}
    expected = max(tumour_classes, key=tumour_classes.get) if tumour_classes else "No Tumor"
    assert summary["class"] == expected or counts[summary["class"]] == counts[expected]
    assert sum(summary["probabilities"].values()) == pytest.approx(100.0)
    assert summary["confidence"] == summary["probabilities"][summary["class"]]
    assert summary["rule"]
    # the key slice's pictures are /api/classify's for the same file
    alone = single(client, five[key["index"]])
    assert key["dicom"] == alone["dicom"]
    for picture in ("heatmap_overlay", "original_image", "heatmap_only"):
        ours = Image.open(io.BytesIO(base64.b64decode(key["visualization"][picture])))
        theirs = Image.open(io.BytesIO(base64.b64decode(alone["visualization"][picture])))
        assert ours.size == theirs.size == (224, 224)
        difference = np.abs(np.asarray(ours, float) - np.asarray(theirs, float)).max()
        assert difference <= 2  # same picture; batch arithmetic may move a map level


def test_zip_gives_the_same_answer_and_counts_what_it_skipped(client, five):
    members = {f"study/series/IM{i:04d}": data for i, data in enumerate(five)}
    members["study/README.txt"] = b"exported by a viewer"
    members["__MACOSX/study/._IM0000"] = b"\x00\x05\x16\x07"
    members["study/DICOMDIR"] = make_dicom(np.zeros((1, 1), np.uint8), pixel_data=False,
                                           extra={"Rows": None, "Columns": None})
    zipped = ok(post(client, [(zip_of(members), "study.zip")]))
    direct = ok(post(client, [(data, "a.dcm") for data in five]))
    assert zipped["series"]["source"] == "zip" and zipped["series"]["files_ignored"] == 3
    assert [s["probabilities"] for s in zipped["slices"]] == \
        [s["probabilities"] for s in direct["slices"]]


def test_instance_number_orders_files_without_positions(client):
    files = series_files(synthetic_pictures(3, seed=7), with_position=False)
    body = ok(post(client, [(files[2], "c"), (files[0], "a"), (files[1], "b")]))
    assert body["series"]["ordered_by"] == "instance_number"
    assert [s["position"] for s in body["slices"]] == [None, None, None]
    first = single(client, files[0])
    assert body["slices"][0]["class"] == first["prediction"]["class"]


def test_coronal_series_is_named_coronal(client):
    files = series_files(synthetic_pictures(3, seed=3), orientation=CORONAL)
    assert ok(post(client, [(f, "c.dcm") for f in files]))["series"]["orientation"] == "coronal"


def test_no_patient_data_reaches_the_answer_or_the_log(client, five, caplog):
    caplog.set_level(logging.DEBUG)
    response = post(client, [(data, f"{PATIENT_VALUES['PatientName']}_{i}.dcm")
                             for i, data in enumerate(five)])
    text = json.dumps(ok(response)) + caplog.text
    for value in PATIENT_VALUES.values():
        assert value not in text
        assert value.split("^")[0] not in text


def test_client_file_names_never_reach_the_disk(client, five, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = "unmistakable-client-name-4417"
    ok(post(client, [(data, f"{marker}-{i}.dcm") for i, data in enumerate(five)]))
    for folder in (tmp_path, Path(tempfile.gettempdir())):
        for _, _, names in os.walk(folder):
            assert not any(marker in name for name in names)


def nifti_volume(count: int = 6) -> np.ndarray:
    """(x, y, z) volume whose axial slice k is scan-like picture k (as the display shows)."""
    pictures = synthetic_pictures(count, size=(64, 80), seed=60)
    # display = plane.T[::-1, ::-1] for a plane indexed [x, y]: invert that
    planes = [np.asarray(p, dtype=np.int16)[::-1, ::-1].T for p in pictures]
    return np.stack(planes, axis=-1)


def test_nifti_volume_is_sliced_axially_in_any_storage_order(client):
    from braintumor.config import Settings
    from braintumor.series.nifti import series_from_nifti

    volume = nifti_volume()
    ras = np.diag([1.0, 1.0, 2.0, 1.0])
    # the same volume stored as (z, y, x), with x running right-to-left (LPS-like axes)
    flipped = volume[::-1, :, :].transpose(2, 1, 0)
    zyx = np.array([[0.0, 0.0, -1.0, 63.0], [0.0, 1.0, 0.0, 0.0],
                    [2.0, 0.0, 0.0, 0.0], [0, 0, 0, 1]])
    limits = {"max_slices": 400, "max_bytes": 1 << 26, "max_pixels": Settings().MAX_IMAGE_PIXELS}
    a = series_from_nifti(nifti_bytes(volume, ras), **limits)
    b = series_from_nifti(nifti_bytes(flipped, zyx, compress=False), **limits)
    assert len(a.slices) == len(b.slices) == 6
    assert [s.position for s in a.slices] == [s.position for s in b.slices]
    for one, other in zip(a.slices, b.slices, strict=True):
        assert np.array_equal(np.asarray(one.load().grey), np.asarray(other.load().grey))
    first = np.asarray(a.slices[0].load().grey, dtype=float)
    assert first.shape == (80, 64)  # rows anterior-posterior (y), columns right-left (x)
    # 2 mm pixels: the small synthetic heads hold enough brain (cm2) to be assessed
    in_plane = np.diag([2.0, 2.0, 2.0, 1.0])
    body = ok(post(client, [(nifti_bytes(volume, in_plane), "vol.nii.gz")]))
    assert body["series"]["source"] == "nifti" and body["series"]["slice_count"] == 6
    assert body["series"]["orientation"] == "axial"
    assert body["series"]["slice_spacing_mm"] == 2.0
    positions = [s["position"] for s in body["slices"]]
    assert positions == sorted(positions)  # inferior to superior


def test_nifti_slices_are_shown_anterior_up_and_right_on_the_left():
    from braintumor.series.nifti import series_from_nifti

    volume = np.zeros((40, 50, 3), dtype=np.int16)  # RAS: x to the right, y anterior
    volume[30:40, 40:50, :] = 1000  # the patient's right front corner
    volume[0:5, 0:5, :] = 200
    series = series_from_nifti(nifti_bytes(volume), max_slices=10, max_bytes=1 << 24,
                               max_pixels=10**6)
    picture = np.asarray(series.slices[1].load().grey)
    assert picture.shape == (50, 40)
    assert picture[:10, :10].mean() > 200  # top left: anterior, patient's right
    assert picture[-5:, -5:].mean() < picture[:10, :10].mean()


# ---- refusals: the spec's error shape, the right 4xx, never a 500 --------------------------

def test_no_file_and_empty_name(client):
    assert_error(client.post(URL, data={}, content_type="multipart/form-data"), "NO_FILE", 400)
    assert_error(post(client, [(b"x", "")]), "EMPTY_FILENAME", 400)


def test_pictures_belong_to_the_single_image_endpoint(client):
    body = assert_error(post(client, [(encode(Image.new("L", (8, 8))), "a.png")]),
                        "INVALID_FILE_TYPE", 415)
    assert "/api/classify" in body["error"]["message"]
    # by content, not by name: DICOM slices named .png are a series
    files = series_files(synthetic_pictures(2, seed=5))
    assert ok(post(client, [(f, "odd.png") for f in files]))["series"]["slice_count"] == 2


def test_nothing_dicom(client):
    body = assert_error(post(client, [(b"hello", "notes.txt"), (b"\x00" * 300, "blob")]),
                        "INVALID_SERIES", 400)
    assert "2 files ignored" in body["error"]["message"]


def test_files_of_two_series(client, five):
    other = series_files(synthetic_pictures(2, seed=9))
    body = assert_error(post(client, [(f, "a.dcm") for f in five[:2] + other]),
                        "INVALID_SERIES", 400)
    assert "2 different series" in body["error"]["message"]


def test_slices_of_two_sizes(client):
    uid = "1.2.826.0.1.3680043.8.498.1"
    small = series_files(synthetic_pictures(2, size=(96, 96)), series_uid=uid)
    large = series_files(synthetic_pictures(1, size=(128, 96)), series_uid=uid)
    body = assert_error(post(client, [(f, "a.dcm") for f in small + large]),
                        "INVALID_SERIES", 400)
    assert "different sizes (96x96 and 128x96)" in body["error"]["message"]


def test_slices_of_two_orientations(client):
    uid = "1.2.826.0.1.3680043.8.498.2"
    axial = series_files(synthetic_pictures(2), series_uid=uid)
    coronal = series_files(synthetic_pictures(1), series_uid=uid, orientation=CORONAL)
    body = assert_error(post(client, [(f, "a.dcm") for f in axial + coronal]),
                        "INVALID_SERIES", 400)
    assert "different orientations" in body["error"]["message"]


def test_truncated_slice(client, five):
    body = assert_error(post(client, [(five[0], "a"), (five[1][:-5000], "b")]),
                        "INVALID_IMAGE", 400)
    assert "truncated" in body["error"]["message"]


@pytest.mark.parametrize(("members", "symlink", "fragment"), [
    ({"../escape.dcm": b"x"}, None, "'..' path"),
    ({"/etc/abs.dcm": b"x"}, None, "absolute"),
    ({"inner.zip": b"x"}, None, "nested"),
    ({"a/b.dcm": zip_of({"x.dcm": b"y"})}, None, "nested"),
    ({}, "link.dcm", "link"),
])
def test_unsafe_zips(client, members, symlink, fragment):
    body = assert_error(post(client, [(zip_of(members, symlink=symlink), "s.zip")]),
                        "INVALID_SERIES", 400)
    assert fragment in body["error"]["message"]


def test_zip_bomb_is_refused_before_it_expands(client, series_app, monkeypatch):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.dcm", b"\x00" * (3 * 1024 * 1024))  # 3 MB -> 3 KB
    svc = series_app.extensions["braintumor"]
    monkeypatch.setattr(svc, "settings", replace(svc.settings, MAX_SERIES_BYTES=2 * 1024 * 1024))
    body = assert_error(post(client, [(buffer.getvalue(), "bomb.zip")]), "FILE_TOO_LARGE", 413)
    assert "expands to 3 MB" in body["error"]["message"]


def test_corrupt_zip_and_zip_with_other_files(client, five):
    assert_error(post(client, [(b"PK\x03\x04" + b"\x00" * 100, "s.zip")]), "INVALID_SERIES", 400)
    body = assert_error(post(client, [(zip_of({"a.dcm": five[0]}), "s.zip"), (five[1], "b")]),
                        "INVALID_SERIES", 400)
    assert "alone" in body["error"]["message"]


def test_limits(client, series_app, five, monkeypatch):
    svc = series_app.extensions["braintumor"]
    monkeypatch.setattr(svc, "settings", replace(svc.settings, MAX_SERIES_SLICES=3))
    body = assert_error(post(client, [(f, "a.dcm") for f in five]), "FILE_TOO_LARGE", 413)
    assert "5 slices; the limit is 3" in body["error"]["message"]
    monkeypatch.setattr(svc, "settings", replace(svc.settings, MAX_SERIES_SLICES=400,
                                                 MAX_SERIES_BYTES=len(five[0]) * 2))
    body = assert_error(post(client, [(f, "a.dcm") for f in five]), "FILE_TOO_LARGE", 413)
    assert "MAX_SERIES_BYTES" in body["error"]["message"]


def test_series_larger_than_a_single_upload_is_accepted(client, series_app, five, monkeypatch):
    """MAX_CONTENT_LENGTH bounds /api/classify, not a series."""
    svc = series_app.extensions["braintumor"]
    monkeypatch.setitem(series_app.config, "MAX_CONTENT_LENGTH", len(five[0]) + 4096)
    monkeypatch.setattr(svc, "settings", replace(svc.settings,
                                                 MAX_CONTENT_LENGTH=len(five[0]) + 2048))
    assert ok(post(client, [(f, "a.dcm") for f in five]))["series"]["slice_count"] == 5


@pytest.mark.parametrize(("shape", "fragment"), [
    ((20, 20), "2-D"),
    ((20, 20, 4, 3), "4-D (3 volumes)"),
])
def test_nifti_of_the_wrong_dimensions(client, shape, fragment):
    data = nifti_bytes(np.ones(shape, dtype=np.int16))
    body = assert_error(post(client, [(data, "v.nii.gz")]), "INVALID_SERIES", 400)
    assert fragment in body["error"]["message"]


def test_truncated_nifti(client):
    raw = nifti_bytes(np.ones((30, 30, 10), dtype=np.int16), compress=False)
    body = assert_error(post(client, [(raw[:-2000], "v.nii")]), "INVALID_SERIES", 400)
    assert "truncated" in body["error"]["message"]
    gz = nifti_bytes(np.ones((30, 30, 10), dtype=np.int16))
    assert_error(post(client, [(gz[: len(gz) // 2], "v.nii.gz")]), "INVALID_SERIES", 400)


def test_a_series_with_nothing_to_answer_is_not_brain_mri(client):
    blank = [Image.new("L", (64, 64), 0) for _ in range(3)]
    body = assert_error(post(client, [(f, "a.dcm") for f in series_files(blank)]),
                        "NOT_BRAIN_MRI", 422)
    assert "None of the series' 3 slices" in body["error"]["message"]


def test_refused_slices_are_reported_and_the_rest_answered(client, five):
    uid = "1.2.826.0.1.3680043.8.498.3"
    scans = series_files(synthetic_pictures(3, size=(96, 96)), series_uid=uid)
    blank = series_files([Image.new("L", (96, 96), 0)], series_uid=uid, start=-45.0)
    body = ok(post(client, [(f, "a.dcm") for f in blank + scans]))
    first = body["slices"][0]
    assert first["refused"] is True and first["class"] is None and first["ood"]["flagged"]
    assert body["summary"]["slices_refused"] == 1 and body["summary"]["slices_answered"] == 3
    assert body["key_slice"]["index"] != 0


def test_a_multi_frame_file_alone_is_a_series_of_its_frames(client):
    data, heights = multi_frame_file()
    body = ok(post(client, [(data, "enhanced.dcm")]))
    assert body["series"]["slice_count"] == 4 and body["series"]["ordered_by"] == "position"
    assert [s["position"] for s in body["slices"]] == sorted(heights)
    assert body["series"]["orientation"] == "axial"
    for answer, z in zip(body["slices"], sorted(heights), strict=True):
        frame = heights.index(z)
        alone = client.post("/api/classify", data={"file": (io.BytesIO(data), "e.dcm"),
                                                   "frame": str(frame)},
                            content_type="multipart/form-data").get_json()
        assert answer["class"] == alone["prediction"]["class"]
        for name, value in alone["prediction"]["probabilities"].items():
            assert answer["probabilities"][name] == pytest.approx(value, abs=0.02)
    assert body["key_slice"]["dicom"]["frame"] == heights.index(
        body["slices"][body["key_slice"]["index"]]["position"])
    assert not any(value in json.dumps(body) for value in PATIENT_VALUES.values())


def test_a_multi_frame_file_among_others_is_refused(client, five):
    data, _ = multi_frame_file()
    body = assert_error(post(client, [(five[0], "a.dcm"), (data, "b.dcm")]),
                        "INVALID_SERIES", 400)
    assert "multi-frame" in body["error"]["message"] and "alone" in body["error"]["message"]
