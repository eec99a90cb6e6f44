"""DICOM through /api/classify: the `dicom` block, frames, refusals, and no patient data out."""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
from PIL import Image

from conftest import encode, scan_like
from dicom_helpers import PATIENT_VALUES, example_file, make_dicom, patient_tags, ramp


@pytest.fixture(scope="module")
def client(tiny_settings, tiny_model):
    """The API with out-of-distribution refusal off: decoding is under test here.

    (With OOD_POLICY=reject, a CT file or a flat synthetic frame is refused before the
    model is asked; see the OOD tests.)
    """
    from dataclasses import fields, replace

    from braintumor.api import create_app

    settings = tiny_settings
    if "OOD_POLICY" in {field.name for field in fields(settings)}:
        settings = replace(settings, OOD_POLICY="off")
    return create_app(settings, model=tiny_model).test_client()


DICOM_KEYS = {"modality", "rows", "columns", "bits_stored", "photometric_interpretation",
              "number_of_frames", "frame", "window", "transfer_syntax", "body_part"}


def post(client, data: bytes, filename: str = "scan.dcm", **fields):
    form = {"file": (io.BytesIO(data), filename), **fields}
    return client.post("/api/classify", data=form, content_type="multipart/form-data")


def ok(response) -> dict:
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True
    assert sum(body["prediction"]["probabilities"].values()) == pytest.approx(100.0)
    return body


def refused(response, fragment: str) -> str:
    assert response.status_code == 400
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == "INVALID_IMAGE" and body["error"]["status"] == 400
    assert fragment in body["error"]["message"]
    return body["error"]["message"]


def test_mr_dicom_classifies_with_a_dicom_block(client):
    body = ok(post(client, example_file("MR_small.dcm")))
    assert {"success", "prediction", "visualization", "processing_time_ms", "timestamp",
            "dicom"} <= set(body)
    dicom = body["dicom"]
    assert set(dicom) == DICOM_KEYS  # no warning for MR
    assert dicom["modality"] == "MR" and dicom["frame"] == 0
    assert dicom["window"] == {"center": 600.0, "width": 1600.0, "source": "file"}
    for key in ("heatmap_overlay", "original_image", "heatmap_only"):
        image = Image.open(io.BytesIO(base64.b64decode(body["visualization"][key])))
        assert image.format == "PNG" and image.size == (224, 224)
    original = np.asarray(Image.open(io.BytesIO(
        base64.b64decode(body["visualization"]["original_image"]))))
    assert original.std() > 20  # windowed: contrast, not a flat picture


def test_ct_dicom_is_classified_with_a_warning(client):
    dicom = ok(post(client, example_file("CT_small.dcm")))["dicom"]
    assert dicom["modality"] == "CT"
    assert dicom["warning"] == "modality CT is not MR: this model was trained on MRI only"
    assert dicom["window"]["source"] == "fallback"


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_compressed_dicom_classifies(client, name):
    assert ok(post(client, example_file(name)))["dicom"]["transfer_syntax"].startswith("JPEG")


def test_extension_dicom_in_any_case(client):
    assert ok(post(client, example_file("MR_small.dcm"), "SCAN.DICOM"))["dicom"]


def test_dicom_named_png_is_read_as_dicom(client):
    assert ok(post(client, example_file("MR_small.dcm"), "scan.png"))["dicom"]["modality"] == "MR"


def test_png_named_dcm_is_read_as_png_and_answers_as_before(client):
    body = ok(post(client, encode(scan_like()), "scan.dcm"))
    assert "dicom" not in body


def five_frames() -> bytes:
    stack = np.stack([np.full((24, 24), 200 * i + 100, np.uint16) for i in range(5)])
    return make_dicom(stack, window=(500, 1000))


def test_multi_frame_defaults_to_the_middle_frame(client):
    dicom = ok(post(client, five_frames()))["dicom"]
    assert dicom["number_of_frames"] == 5 and dicom["frame"] == 2


@pytest.mark.parametrize("frame", ["0", "4", " 3 "])
def test_frame_field_chooses_a_frame(client, frame):
    assert ok(post(client, five_frames(), frame=frame))["dicom"]["frame"] == int(frame)


def test_empty_frame_field_means_the_default(client):
    assert ok(post(client, five_frames(), frame=""))["dicom"]["frame"] == 2


def test_frame_out_of_range_is_invalid_image(client):
    message = refused(post(client, five_frames(), frame="5"), "out of range")
    assert message == ("Image validation failed: frame 5 is out of range: the DICOM file "
                       "has 5 frames (0-4)")


@pytest.mark.parametrize("frame", ["-1", "two", "1.0"])
def test_malformed_frame_is_invalid_image(client, frame):
    refused(post(client, five_frames(), frame=frame), "frame must be a whole number")


def test_frame_on_a_png(client):
    assert "dicom" not in ok(post(client, encode(scan_like()), "scan.png", frame="0"))
    refused(post(client, encode(scan_like()), "scan.png", frame="1"), "only DICOM files")


def test_truncated_dicom_is_invalid_image(client):
    data = example_file("MR_small.dcm")
    refused(post(client, data[: len(data) // 2]), "truncated")


def test_dicom_without_pixels_is_invalid_image(client):
    refused(post(client, make_dicom(ramp(0, 10), pixel_data=False)), "no pixel data")
    refused(post(client, example_file("reportsi.dcm")), "it is not an image")


def test_unsupported_transfer_syntax_is_invalid_image_not_500(client):
    refused(post(client, make_dicom(ramp(0, 10), transfer_syntax="1.2.840.10008.1.2.4.100")),
            "is not supported")


def test_missing_plugin_is_invalid_image_not_500(client, monkeypatch):
    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setattr(Decoder, "is_available", property(lambda self: self.is_native))
    refused(post(client, example_file("JPEG2000.dcm")), "no decoder for it is installed")


def test_corrupt_compressed_dicom_is_invalid_image(client):
    refused(post(client, example_file("JPEG-lossy.dcm")), "cannot be decoded")


def test_file_type_message_lists_dicom(client):
    response = post(client, example_file("MR_small.dcm"), "scan.dcm.exe")
    assert response.status_code == 415
    assert response.get_json()["error"]["message"] == (
        "File type not allowed. Allowed: png, jpg, jpeg, gif, bmp, webp, dcm, dicom")


# --- no patient data out ------------------------------------------------------------------


def stuffed(**kwargs) -> bytes:
    return make_dicom(ramp(0, 1000, (96, 96)), extra=patient_tags(), **kwargs)


def leaked(text: str) -> list[str]:
    found = []
    for value in PATIENT_VALUES.values():
        for part in {value, *value.replace("^", " ").split()}:
            if len(part) >= 6 and part in text:
                found.append(part)
    return found


@pytest.fixture
def all_logs(caplog):
    """Every log record of every logger, from DEBUG up, as the server would write them."""
    caplog.set_level(logging.DEBUG)
    return caplog


def test_response_and_logs_carry_no_patient_data(client, all_logs):
    data = stuffed()
    assert PATIENT_VALUES["PatientName"].encode() in data
    all_logs.clear()
    response = post(client, data, "Zyxwhimsy.dcm")
    body = ok(response)
    assert body["dicom"]["modality"] == "MR"
    assert leaked(response.get_data(as_text=True)) == []
    assert leaked(all_logs.text) == []


@pytest.mark.parametrize("variant", ["no-pixels", "truncated", "frame", "syntax"])
def test_error_responses_and_logs_carry_no_patient_data(client, all_logs, variant):
    data, fields = {
        "no-pixels": (stuffed(pixel_data=False), {}),
        "truncated": (stuffed()[:-3000], {}),
        "frame": (stuffed(), {"frame": "7"}),
        "syntax": (stuffed(transfer_syntax="1.2.840.10008.1.2.4.100"), {}),
    }[variant]
    all_logs.clear()
    response = post(client, data, **fields)
    assert response.status_code == 400
    assert leaked(response.get_data(as_text=True)) == []
    assert leaked(all_logs.text) == []


@pytest.mark.dataset
def test_real_scans_as_12_bit_mr_dicom_get_the_jpegs_answer():
    """The default model and the default OOD policy: a Testing scan stored as a 12-bit MR
    DICOM with its own window is answered like the JPEG it came from, dicom block and all."""
    from braintumor.api import create_app
    from braintumor.config import Settings
    from conftest import dataset_dir

    client = create_app(Settings()).test_client()
    testing = dataset_dir() / "Testing"
    answered = 0
    for name in ["glioma/Te-gl_0010.jpg", "meningioma/Te-me_0010.jpg",
                 "notumor/Te-no_0010.jpg", "notumor/Te-no_0020.jpg",
                 "pituitary/Te-pi_0010.jpg"]:
        jpeg = (testing / name).read_bytes()
        grey = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L")).astype(np.uint16)
        # 0..255 spread over 12 bits; the file's window maps them back onto 0..255
        dicom = make_dicom(grey * 16 + 8, bits_stored=12, window=(2048.0, 4096.0))
        jpeg_response, dicom_response = post(client, jpeg, "scan.jpg"), post(client, dicom)
        if jpeg_response.status_code == 422:  # a scan the model refuses: refused alike
            assert dicom_response.status_code == 422, name
            assert (dicom_response.get_json()["error"]["code"]
                    == jpeg_response.get_json()["error"]["code"])
            continue
        answered += 1
        as_jpeg, as_dicom = ok(jpeg_response), ok(dicom_response)
        assert as_dicom["prediction"]["class"] == as_jpeg["prediction"]["class"], name
        for cls, value in as_jpeg["prediction"]["probabilities"].items():
            assert as_dicom["prediction"]["probabilities"][cls] == pytest.approx(value, abs=2.0)
        assert as_dicom["ood"]["flagged"] is False
        assert as_dicom["dicom"]["modality"] == "MR" and as_dicom["dicom"]["bits_stored"] == 12
        assert as_dicom["dicom"]["window"] == {"center": 2048.0, "width": 4096.0,
                                               "source": "file"}
    assert answered >= 4  # the default model refuses under 1% of Testing
