"""``braintumor evaluate-localisation``: the figures on maps whose answers are known, and
the command on synthetic slices with masks (the checker model's heatmap lies on the
checkerboard, so it must score 100% pointing), on a run folder's validation split only."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from volume_helpers import CLASS_NAMES, head_plane, save_checker_model, tumour_slice

from braintumor.evaluation.localisation import (
    GALLERY_MAX_BYTES,
    evaluate_localisation,
    split_check,
    validation_slices,
)
from braintumor.evaluation.localisation_maps import (
    brightest_point,
    dice,
    energy_in,
    jet_levels,
    peak,
    score_maps,
)


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_jet_levels_read_the_rendered_heatmap_back() -> None:
    from braintumor.explain.render import jet_lut

    levels = np.arange(256, dtype=np.int64).reshape(16, 16)
    read = jet_levels(jet_lut()[levels]).ravel()
    flat = np.arange(28, 32)  # jet gives these four levels one colour: their mean
    assert (read[flat] == 29.5).all()
    assert (np.delete(read, flat) == np.delete(np.arange(256), flat)).all()
    off = jet_lut()[levels].astype(np.int64)
    off[0, 5] += 1  # a colour not in the table: the nearest entry
    assert jet_levels(np.clip(off, 0, 255))[0, 5] == 5


def test_peak_of_a_plateau_is_its_middle_and_an_empty_map_has_none() -> None:
    heat = np.zeros((20, 20))
    heat[4:7, 10:17] = 1.0
    assert peak(heat) == (5, 13)
    assert peak(np.zeros((5, 5))) is None


def test_pointing_energy_dice_and_baselines_by_hand() -> None:
    shape = (100, 100)
    mask = np.zeros(shape, bool)
    mask[60:70, 20:30] = True
    grey = np.zeros(shape)
    grey[10:14, 80:84] = 255  # the brightest spot, far from the mask
    inside = np.zeros(shape)
    inside[60:70, 20:30] = 1.0
    inside[65, 25] = 2.0
    figures = score_maps(inside, mask, grey, None)
    assert figures["pointing"] is True and figures["energy"] == 1.0
    assert figures["dice"] is None
    assert figures["centre_hit"] is False and figures["brightest_hit"] is False
    assert figures["mask_share"] == 0.01

    near = np.zeros(shape)
    near[58, 25] = 1.0  # 2 px above the mask: inside the 3% (3 px) dilation
    assert score_maps(near, mask, grey, None)["pointing"] is True
    far = np.zeros(shape)
    far[55, 25] = 1.0  # 5 px above
    assert score_maps(far, mask, grey, None)["pointing"] is False
    assert score_maps(np.zeros(shape), mask, grey, None)["pointing"] is False

    half = inside.copy()
    half[:10, :10] = 1.0  # 100 pixels outside against 101 (one counted twice) inside
    assert energy_in(half, mask) == pytest.approx(101 / 201)
    outline = np.zeros(shape, bool)
    outline[60:70, 25:35] = True  # half of it on the mask
    assert dice(outline, mask) == 0.5
    assert score_maps(inside, mask, grey, outline)["dice"] == 0.5

    centred = np.zeros(shape, bool)
    centred[45:55, 45:55] = True
    assert score_maps(inside, centred, grey, None)["centre_hit"] is True
    assert brightest_point(grey) in {(r, c) for r in range(10, 14) for c in range(80, 84)}


def _training_folder(root: Path) -> tuple[Path, Path, list[str]]:
    """Training/ and masks/ with three glioma slices (checkerboards), a meningioma
    slice the model gets wrong, and a No Tumor slice; returns the validation list."""
    data, masks = root / "Training", root / "masks"
    squares = [(70, 60, 24), (40, 50, 16), (80, 70, 20), (60, 40, 12)]
    names = []
    for i, square in enumerate(squares):
        folder = "glioma" if i < 3 else "meningioma"
        picture, mask = tumour_slice(square)
        if folder == "meningioma":  # no checkerboard: the checker model says No Tumor
            picture = Image.fromarray(head_plane().astype(np.uint8), mode="L")
        (data / folder).mkdir(parents=True, exist_ok=True)
        (masks / folder).mkdir(parents=True, exist_ok=True)
        (data / folder / f"s{i}.jpg").write_bytes(_png(picture))  # PNG bytes, a .jpg name
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / folder / f"s{i}.png")
        names.append(f"{folder}/s{i}.jpg")
    (data / "notumor").mkdir()
    (data / "notumor" / "n.jpg").write_bytes(_png(Image.fromarray(
        head_plane().astype(np.uint8), mode="L")))
    return data, masks, [*names, "notumor/n.jpg"]


def _run_folder(root: Path, val: list[str], train: list[str]) -> Path:
    run = root / "run"
    run.mkdir()
    (run / "split.json").write_text(json.dumps({"train": train, "val": val}))
    return run


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.model import load_model

    path = save_checker_model(tmp_path_factory.mktemp("checker") / "checker.keras")
    settings = Settings(MODEL_PATH=path, OOD_POLICY="warn")
    return Classifier(load_model(settings), settings), settings, path


def test_validation_slices_are_the_runs_val_list_with_masks_only(tmp_path) -> None:
    data, masks, names = _training_folder(tmp_path)
    run = _run_folder(tmp_path, [names[1], names[3], names[4],
                                 "volumes/healthy/x/T1.nii.gz#head:3", "br35h-tumour/y.jpg"],
                      [names[0], names[2]])
    assert validation_slices(run, masks, data, CLASS_NAMES) == [
        ("glioma/s1.jpg", 0), ("meningioma/s3.jpg", 1)]
    with pytest.raises(FileNotFoundError, match=r"split\.json"):
        validation_slices(tmp_path, masks, data, CLASS_NAMES)


def test_split_check_compares_the_recipes_split_keys(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    recipe = {"data": "d", "seed": 42, "val_fraction": 0.15, "size": 144, "framing": "head",
              "extra_tumour": "e", "extra_val_fraction": 0.25, "run_dir": "runs/a"}
    (run / "config.json").write_text(json.dumps({**recipe, "run_dir": "run", "epochs": 3}))
    same = split_check(recipe, run)
    assert same["split_keys_match"] and not same["same_run_folder_name"]
    (run / "config.json").write_text(json.dumps({**recipe, "seed": 1}))
    assert split_check(recipe, run)["differ"] == {"seed": [42, 1]}
    assert split_check({}, run)["checked"] is False


def test_a_heatmap_on_the_tumour_scores_full_pointing(checker, tmp_path) -> None:
    classifier, settings, _ = checker
    data, masks, names = _training_folder(tmp_path)
    run = _run_folder(tmp_path, names, [])
    out = tmp_path / "out"
    report = evaluate_localisation(classifier, settings, run, masks, data, out)
    assert report["slices"] == 4  # the No Tumor slice has no mask
    glioma, meningioma = report["per_class"]["Glioma"], report["per_class"]["Meningioma"]
    assert (glioma["slices"], glioma["rightly_classified"]) == (3, 3)
    assert (meningioma["slices"], meningioma["rightly_classified"]) == (1, 0)
    assert meningioma["pointing_game"] is None  # wrong answers are not scored
    overall = report["overall"]
    assert overall["rightly_classified"] == 3 and overall["accuracy"] == 0.75
    assert overall["pointing_game"] == 1.0
    assert overall["energy_in_mask"] > 0.95
    assert overall["baseline_centre_pointing"] == 0.0
    assert overall["baseline_brightest_pointing"] == 0.0
    shares = [s["mask_share"] for s in report["scores"] if s["right"]]
    assert overall["uniform_map_energy"] == pytest.approx(np.mean(shares), abs=1e-4)
    assert overall["dice_mean"] is None  # the checker model draws no outline
    gallery = out / "gallery.png"
    assert report["gallery"]["slices"] == 3
    assert 0 < gallery.stat().st_size == report["gallery"]["bytes"] < GALLERY_MAX_BYTES
    markdown = (out / "report.md").read_text()
    assert "| **All** | 4 | 3 (75.0%) | 100.0% |" in markdown
    assert json.loads((out / "report.json").read_text())["overall"] == overall


def test_the_outline_of_a_segmenting_model_is_scored_by_dice(tmp_path) -> None:
    """An outline that covers exactly the head box (seg_helpers' constant outline):
    Dice = 2|M| / (|box| + |M|) for a mask M inside the box."""
    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.model import load_model
    from braintumor.preprocessing import HeadFrame
    from seg_helpers import clean_scan, save_seg_model

    path = save_seg_model(tmp_path / "seg.keras", outline_bias=8.0)
    settings = Settings(MODEL_PATH=path, OOD_POLICY="warn")
    classifier = Classifier(load_model(settings), settings)
    scan = clean_scan((240, 232))
    predicted = classifier.classify_upload(_png(scan), "s.png").prediction
    name = CLASS_NAMES[predicted.class_id]
    if name == "No Tumor":
        pytest.skip("the random model calls this scan No Tumor")
    folder = {"Glioma": "glioma", "Meningioma": "meningioma", "Pituitary": "pituitary"}[name]
    data, masks = tmp_path / "Training", tmp_path / "masks"
    (data / folder).mkdir(parents=True)
    (masks / folder).mkdir(parents=True)
    (data / folder / "s.jpg").write_bytes(_png(scan))
    mask = np.zeros((232, 240), bool)
    mask[100:130, 90:140] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(masks / folder / "s.png")
    run = _run_folder(tmp_path, [f"{folder}/s.jpg"], [])
    report = evaluate_localisation(classifier, settings, run, masks, data, tmp_path / "out")
    top, bottom, left, right = HeadFrame.of(np.asarray(scan)).box
    box = (bottom - top) * (right - left)
    assert report["overall"]["dice_mean"] == pytest.approx(2 * mask.sum() / (box + mask.sum()),
                                                           abs=0.01)
    assert report["model"]["outline"] is True


def test_the_command_line_needs_a_run_folder(checker, tmp_path, monkeypatch, capsys) -> None:
    from braintumor.cli import main

    _, _, model_path = checker
    data, masks, names = _training_folder(tmp_path)
    monkeypatch.setenv("OOD_POLICY", "warn")
    args = ["evaluate-localisation", "--model", str(model_path), "--masks", str(masks),
            "--data", str(data)]
    with pytest.raises(SystemExit):
        main(args)  # --run-dir is required
    capsys.readouterr()
    assert main([*args, "--run-dir", str(tmp_path)]) == 2
    assert "split.json" in capsys.readouterr().err
    run = _run_folder(tmp_path, names, [])
    assert main([*args, "--run-dir", str(run), "--out", str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["overall"]["pointing_game"] == 1.0
