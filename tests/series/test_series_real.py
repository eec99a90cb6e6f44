"""Real scans as a 12-bit MR series, the default model and OOD policy: each slice of the
series answers exactly what /api/classify answers for the same file."""

from __future__ import annotations

import io
import json
import logging

import pytest
from PIL import Image

from braintumor.config import Settings
from conftest import dataset_dir
from dicom_helpers import PATIENT_VALUES
from series_helpers import series_files

pytestmark = pytest.mark.dataset
FOLDERS = ["glioma", "meningioma", "notumor", "pituitary"]


def real_series(count: int = 8) -> list[bytes]:
    """``count`` Testing scans (classes in turn) at 256x256 as one MR series."""
    root = dataset_dir() / "Testing"
    pictures = []
    for i in range(count):
        files = sorted((root / FOLDERS[i % 4]).glob("*.jpg"))
        pictures.append(Image.open(files[10 + i]).convert("L").resize((256, 256)))
    return series_files(pictures, spacing=4.0)


def test_real_series_matches_single_slice_answers(caplog):
    from braintumor.api import create_app

    caplog.set_level(logging.DEBUG)
    client = create_app(Settings()).test_client()
    files = real_series()
    form = {"file": [(io.BytesIO(data), f"slice{i}.dcm") for i, data in
                     reversed(list(enumerate(files)))]}
    response = client.post("/api/classify-series", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["series"]["slice_count"] == len(files)
    assert body["series"]["rows"] == body["series"]["columns"] == 256
    for answer, data in zip(body["slices"], files, strict=True):
        alone = client.post("/api/classify", data={"file": (io.BytesIO(data), "s.dcm")},
                            content_type="multipart/form-data")
        if alone.status_code == 422:
            assert answer["refused"] is True
            continue
        alone = alone.get_json()
        assert answer["class"] == alone["prediction"]["class"]
        for name, value in alone["prediction"]["probabilities"].items():
            assert answer["probabilities"][name] == pytest.approx(value, abs=0.02)
    assert body["summary"]["slices_answered"] >= len(files) - 2
    # the series rule: a tumour only with support, from assessed slices calling one
    summary = body["summary"]
    assert summary["assessed_slices"] >= len(files) - 2  # real mid-brain slices
    calls = {s["index"] for s in body["slices"]
             if s["assessed"] and s["tumour_probability"] >= 50}
    assert set(summary["supporting_slices"]) <= calls
    assert (summary["class"] != "No Tumor") == bool(summary["supporting_slices"])
    text = json.dumps(body) + caplog.text
    assert not any(value in text for value in PATIENT_VALUES.values())
