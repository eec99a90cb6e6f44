"""The SR and the Secondary Capture against an independent validator: dicom3tools'
dciodvfy (Debian's dicom3tools; `make test` installs it with Orthanc), which checks every
module and attribute condition of the IODs, and a re-read with pydicom and highdicom."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from braintumor.dicomweb.results import (
    ModelIdentity,
    reference,
    secondary_capture,
    structured_report,
)
from series_helpers import multi_frame_file, series_files, synthetic_pictures

SUMMARY = {"class": "Glioma", "key_slice": 1, "tumour_probability": 95.0,
           "probabilities": {"Glioma": 80.0, "Meningioma": 10.0, "No Tumor": 5.0,
                             "Pituitary": 5.0}}
MODEL = ModelIdentity("compact", "test-1")


def errors(path) -> list[str]:
    """dciodvfy's Error lines (its warnings, e.g. about the private coding scheme, pass)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy is not installed (Debian: apt-get install dicom3tools)")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def overlay_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((96, 96, 3), 60, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("multi_frame", [False, True])
def test_sr_and_secondary_capture_pass_dciodvfy(tmp_path, multi_frame):
    if multi_frame:
        data, _ = multi_frame_file()
        frame: int | None = 2
    else:
        data, frame = series_files(synthetic_pictures(3, seed=1))[1], None
    source = reference(pydicom.dcmread(io.BytesIO(data)))
    report = structured_report(source, SUMMARY, 1, MODEL, generate_uid(), generate_uid(),
                               frame)
    capture = secondary_capture(source, overlay_png(), MODEL, generate_uid(), generate_uid(),
                                frame)
    assert capture is not None
    for name, dataset in (("sr.dcm", report), ("sc.dcm", capture)):
        path = tmp_path / name
        dataset.save_as(path, enforce_file_format=True)
        assert errors(path) == [], name
        again = pydicom.dcmread(path)
        assert again.SOPInstanceUID == dataset.SOPInstanceUID
        assert again.ContentQualification == "RESEARCH"
    assert pydicom.dcmread(tmp_path / "sr.dcm").VerificationFlag == "UNVERIFIED"
    assert pydicom.dcmread(tmp_path / "sc.dcm").pixel_array.shape == (96, 96, 3)
