"""`braintumor fit-ood`: fits on the run's train list, thresholds on its validation list."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from braintumor.cli import main
from conftest import encode, scan_like

FOLDERS = ("glioma", "meningioma", "notumor", "pituitary")


def varied_scan(seed: int) -> Image.Image:
    """Scan-like, shifted and brightened so that no two are near-duplicates to the split."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(scan_like((64, 64), seed=seed), dtype=np.float32)
    shifted = np.roll(pixels, tuple(rng.integers(-12, 13, 2)), axis=(0, 1))
    return Image.fromarray(np.clip(shifted * rng.uniform(0.6, 1.4), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit-ood") / "Training"
    paths = []
    for k, folder in enumerate(FOLDERS):
        (root / folder).mkdir(parents=True)
        for i in range(10):
            name = f"{folder}/{folder[:2]}{i}.png"
            (root / name).write_bytes(encode(varied_scan(1000 + 10 * k + i)))
            paths.append(name)
    return root, paths


def test_fit_ood_uses_the_runs_split_and_writes_the_model(folder_dataset, tiny_model_path,
                                                          tmp_path, capsys):
    root, paths = folder_dataset
    run = tmp_path / "run"
    run.mkdir()
    val = [p for p in paths if p.endswith(("8.png", "9.png"))]
    train = [p for p in paths if p not in val]
    (run / "split.json").write_text(json.dumps({"train": train, "val": val}))
    model = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, model)
    out = tmp_path / "fitted.keras"
    assert main(["fit-ood", "--model", str(model), "--data", str(root), "--run-dir", str(run),
                 "--out", str(out), "--cache-dir", ""]) == 0
    description = json.loads(capsys.readouterr().out)
    assert description["images"] == {"train": 32, "validation": 8}
    assert description["split"] == str(run / "split.json")
    assert description["quantile"] == 0.995

    from braintumor.model.metadata import read_metadata
    from braintumor.ood.stats import read_ood_arrays

    assert read_ood_arrays(model) is None  # --out: the original is left alone
    meta, source = read_metadata(out)
    assert source == "embedded" and meta["ood"] == description
    assert meta["class_names"] == ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


def test_fit_ood_without_a_run_folder_splits_itself(folder_dataset, tiny_model_path, tmp_path,
                                                    capsys):
    root, _ = folder_dataset
    model = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, model)
    assert main(["fit-ood", "--model", str(model), "--data", str(root), "--cache-dir", ""]) == 0
    description = json.loads(capsys.readouterr().out)
    assert description["split"].startswith("near-duplicate-aware")
    assert sum(description["images"].values()) == 40


def test_fit_ood_error_is_one_line(folder_dataset, tiny_model_path, tmp_path, capsys):
    root, _ = folder_dataset
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.json").write_text(json.dumps({"train": ["elsewhere/a.png"], "val": []}))
    model = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, model)
    assert main(["fit-ood", "--model", str(model), "--data", str(root), "--run-dir", str(run),
                 "--cache-dir", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: fit-ood: ") and "not in the data" in err and "\n" not in err
