"""`braintumor classify-series`: a folder, a zip or a NIfTI volume -> the endpoint's JSON."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from braintumor.cli import main
from series_helpers import mni_template_path, nifti_bytes, series_files, synthetic_pictures, zip_of

PICTURES = ("heatmap_overlay", "original_image", "heatmap_only")


def test_folder_prints_the_json_and_writes_the_key_slice(tiny_model_path, tmp_path,
                                                         monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    folder = tmp_path / "series" / "sub"
    folder.mkdir(parents=True)
    for i, data in enumerate(series_files(synthetic_pictures(4, seed=20))):
        (folder / f"IM{3 - i}").write_bytes(data)  # names in reverse slice order
    (folder / "notes.txt").write_text("not a slice")
    out = tmp_path / "out"
    assert main(["classify-series", str(tmp_path / "series"), "--out", str(out)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["series"]["slice_count"] == 4 and body["series"]["files_ignored"] == 1
    assert [s["position"] for s in body["slices"]] == [-40.0, -35.0, -30.0, -25.0]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"key_slice_{k}.png"
                                                           for k in PICTURES)
    assert Image.open(out / "key_slice_heatmap_overlay.png").size == (224, 224)


def test_zip_and_nifti(tiny_model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    files = series_files(synthetic_pictures(3, seed=30))
    archive = tmp_path / "series.zip"
    archive.write_bytes(zip_of({f"a/{i}.dcm": data for i, data in enumerate(files)}))
    assert main(["classify-series", str(archive), "--compact"]) == 0
    assert json.loads(capsys.readouterr().out)["series"]["source"] == "zip"
    volume = tmp_path / "v.nii.gz"
    volume.write_bytes(nifti_bytes(np.stack([np.asarray(p, np.int16) for p in
                                             synthetic_pictures(3, seed=31)], axis=-1)))
    assert main(["classify-series", str(volume)]) == 0
    assert json.loads(capsys.readouterr().out)["series"]["slice_count"] == 3


def test_real_brain_template_as_nifti(tiny_model_path, tmp_path, monkeypatch, capsys):
    """nilearn's MNI152 T1 (a real head, 1 mm): 189 axial slices, inferior to superior."""
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    volume = tmp_path / "t1.nii.gz"
    shutil.copy(mni_template_path(), volume)
    assert main(["classify-series", str(volume), "--compact"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["series"]["slice_count"] == 189
    assert (body["series"]["rows"], body["series"]["columns"]) == (233, 197)
    positions = [s["position"] for s in body["slices"]]
    assert positions == sorted(positions) and positions[-1] - positions[0] == 188.0
    # blank slices above the head are refused by the input checks, the brain is answered
    assert body["slices"][-1]["refused"] and not body["slices"][94]["refused"]


def test_bad_input_is_one_line_and_exit_2(tiny_model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    flat = tmp_path / "flat.nii"
    flat.write_bytes(nifti_bytes(np.ones((8, 8), np.int16), compress=False))
    assert main(["classify-series", str(flat)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: The NIfTI image is 2-D; a series is one 3-D volume"
    assert main(["classify-series", str(tmp_path / "missing")]) == 2
    assert "No file or folder" in capsys.readouterr().err


def test_nothing_to_answer_prints_the_error_json(tiny_model_path, tmp_path, monkeypatch,
                                                 capsys):
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    for i, data in enumerate(series_files([Image.new("L", (32, 32), 0)] * 2)):
        (tmp_path / f"{i}.dcm").write_bytes(data)
    assert main(["classify-series", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "NOT_BRAIN_MRI"
    assert captured.err.startswith("error: None of the series' 2 slices")
