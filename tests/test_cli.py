"""The `braintumor` command line: classify prints the API's JSON and writes the PNGs."""

from __future__ import annotations

import json

from PIL import Image

from braintumor.cli import main
from conftest import encode, scan_like


def test_classify_prints_json_and_writes_three_pngs(tiny_model_path, tmp_path, monkeypatch,
                                                   capsys):
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    image = tmp_path / "slice.jpg"
    image.write_bytes(encode(scan_like((120, 90)), "JPEG"))
    out = tmp_path / "out"
    assert main(["classify", str(image), "--out", str(out)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["success"] is True
    assert sum(body["prediction"]["probabilities"].values()) == 100.0
    for key in ("heatmap_overlay", "original_image", "heatmap_only"):
        picture = Image.open(out / f"slice_{key}.png")
        assert picture.size == (224, 168)


def test_classify_error_is_one_line_and_an_exit_code(tiny_model_path, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert main(["classify", str(text)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Image validation failed") and "\n" not in err


def test_bad_setting_is_reported_by_name(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "missing.keras"))
    image = tmp_path / "a.png"
    image.write_bytes(encode(scan_like()))
    assert main(["classify", str(image)]) == 2
    assert capsys.readouterr().err.startswith("error: MODEL_PATH: no model file")


def test_classify_dicom_with_a_frame(tiny_model_path, tmp_path, monkeypatch, capsys):
    import numpy as np

    from dicom_helpers import make_dicom, ramp

    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    monkeypatch.setenv("OOD_POLICY", "off")  # decoding is under test, not OOD refusal
    stack = np.stack([ramp(0, 1000 * (i + 1)) for i in range(3)])
    image = tmp_path / "series.dcm"
    image.write_bytes(make_dicom(stack, window=(500, 1000)))
    assert main(["classify", str(image), "--frame", "0", "--compact"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["dicom"]["frame"] == 0 and body["dicom"]["number_of_frames"] == 3
    assert main(["classify", str(image), "--frame", "3"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: Image validation failed: frame 3 is out of range: the DICOM file has "
        "3 frames (0-2)")
