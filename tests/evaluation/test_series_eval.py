"""``braintumor evaluate-series``: synthetic volumes whose right answers are known (the
checker model of volume_helpers sees exactly the checkerboard "tumours"), so every figure
of the report can be checked by hand; and the real volumes when BRAINTUMOR_VOLUMES is set."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from volume_helpers import (
    SLICES,
    TUMOUR_SLICES,
    VOXEL_MM,
    save_checker_model,
    volumes_folder,
)

from braintumor.evaluation.series_eval import evaluate_series, side_figures
from braintumor.evaluation.series_report import plot_volume
from braintumor.evaluation.series_volumes import (
    VolumeAnswer,
    area_bin,
    bin_labels,
    label_slices,
    read_answer,
)
from braintumor.training.volumes import read_manifest

VISIBLE = [k for k, (_, visible) in TUMOUR_SLICES.items() if visible]


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.model import load_model

    path = save_checker_model(tmp_path_factory.mktemp("checker") / "checker.keras")
    settings = Settings(MODEL_PATH=path, OOD_POLICY="warn")
    return Classifier(load_model(settings), settings), settings, path


@pytest.fixture(scope="module")
def evaluated(checker, tmp_path_factory):
    classifier, settings, _ = checker
    root = tmp_path_factory.mktemp("volumes")
    cases = volumes_folder(root, ("test", "val"))
    out = tmp_path_factory.mktemp("report")
    report = evaluate_series(classifier, settings, root, out, cases="test")
    return report, out, cases, root


def test_core_area_bins() -> None:
    assert bin_labels() == ["< 1 cm2", "1-2 cm2", "2-5 cm2", "5-10 cm2", ">= 10 cm2"]
    assert [area_bin(a) for a in (0.0, 0.36, 1.0, 1.44, 3.24, 5.0, 9.0, 12.96)] == \
        [None, 0, 1, 1, 2, 3, 3, 4]


def test_label_map_is_sliced_as_its_image_and_counts_the_core_only(tmp_path) -> None:
    volumes_folder(tmp_path)
    item = next(f for f in read_manifest(tmp_path) if f.kind == "tumour")
    core, any_label = label_slices(item)
    assert len(core) == SLICES
    expected = [0.0] * SLICES
    for k, (side, _) in TUMOUR_SLICES.items():
        expected[k] = round(side * side * VOXEL_MM ** 2 / 100.0, 3)  # oedema ring left out
    assert core == pytest.approx(expected)
    assert any_label == [k in TUMOUR_SLICES for k in range(SLICES)]


def test_known_answers_give_the_figures_by_hand(evaluated) -> None:
    report, _, cases, _ = evaluated
    assert set(report["sides"]) == {"test"}
    volumes = {v["case"]: v for v in report["volumes"]}
    assert set(volumes) == set(cases["test"].values())  # the val cases are left out
    tumour, healthy = volumes[cases["test"]["tumour"]], volumes[cases["test"]["healthy"]]
    assert tumour["series_class"] == "Glioma" and tumour["class_right"]
    assert healthy["series_class"] == "No Tumor" and healthy["class_right"]
    called = [k for k, c in enumerate(tumour["classes"]) if c == "Glioma"]
    assert called == VISIBLE
    assert tumour["key_slice"] in VISIBLE
    assert tumour["probabilities"][VISIBLE[0]] > 99 > 50 > tumour["probabilities"][0]

    series, slices = report["sides"]["test"]["series"], report["sides"]["test"]["slices"]
    assert (series["sensitivity"], series["specificity"]) == (1.0, 1.0)
    assert series["tumour_type_right_share"] == 1.0 and series["refused_whole"] == 0
    assert slices["healthy_slices_used"] == SLICES
    assert slices["false_alarm_rate"] == 0.0 == slices["false_alarm_rate_answered"]
    # no label within 10 mm (3 slices at 3 mm) of slices 2..7: slices 11..15
    assert slices["tumour_free_slices_of_tumour_volumes"] == 5
    assert slices["tumour_free_false_alarm_rate"] == 0.0
    bins = {b["bin"]: b for b in slices["by_core_area"]}
    assert [bins[label]["slices"] for label in bin_labels()] == [1, 1, 1, 2, 1]
    assert [bins[label]["sensitivity"] for label in bin_labels()] == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert slices["tumour_slice_sensitivity"] == 1.0
    assert slices["slices"] == 2 * SLICES and slices["slices_refused"] == 0


def test_report_files_a_table_and_one_small_plot_per_volume(evaluated) -> None:
    report, out, _, _ = evaluated
    assert json.loads((out / "report.json").read_text())["sides"] == report["sides"]
    markdown = (out / "report.md").read_text()
    assert "| Case | Side | Kind |" in markdown and "## test cases" in markdown
    plots = sorted(out.glob("*.png"))
    assert [p.name for p in plots] == sorted(v["plot"] for v in report["volumes"])
    assert len(plots) == 2
    for plot in plots:
        assert plot.stat().st_size < 100_000
        with Image.open(plot) as picture:
            assert picture.width <= 800


def test_val_and_test_are_never_pooled(checker, tmp_path) -> None:
    classifier, settings, _ = checker
    cases = volumes_folder(tmp_path / "volumes", ("test", "val"))
    report = evaluate_series(classifier, settings, tmp_path / "volumes", tmp_path / "all",
                             cases="all")
    assert set(report["sides"]) == {"test", "val"}
    for side in ("test", "val"):
        assert report["sides"][side]["series"]["volumes"] == 2
        assert {v["case"] for v in report["volumes"] if v["split"] == side} == \
            set(cases[side].values())
    val = evaluate_series(classifier, settings, tmp_path / "volumes", tmp_path / "val",
                          cases="val")
    assert {v["case"] for v in val["volumes"]} == set(cases["val"].values())


def _answer(classes: list[str | None], **summary) -> dict:
    return {"series": {"slice_spacing_mm": 3.0},
            "slices": [{"index": k, "position": 3.0 * k, "refused": c is None, "class": c,
                        "tumour_probability": None if c is None else
                        (90.0 if c != "No Tumor" else 10.0)} for k, c in enumerate(classes)],
            "summary": {"class": "Glioma", "tumour_probability": 90.0, "key_slice": 1,
                        "rule": "r", **summary}}


def test_slices_not_assessed_are_read_when_the_answer_has_them() -> None:
    classes = ["Glioma", "Glioma", "No Tumor", None, "Glioma"]
    absent = VolumeAnswer("h", "test", "h.nii.gz", "healthy", "T1", "none")
    read_answer(absent, _answer(classes))
    assert absent.assessed is None and absent.threshold == 50.0
    assert side_figures([absent])["slices"]["slices_not_assessed"] is None
    assert sum(absent.called()) == 3

    listed = VolumeAnswer("h", "test", "h.nii.gz", "healthy", "T1", "none")
    read_answer(listed, _answer(classes, not_assessed=[0, 4], slice_threshold=0.7))
    assert listed.assessed == [False, True, True, True, False]
    assert listed.threshold == pytest.approx(70.0)
    figures = side_figures([listed])["slices"]
    assert figures["slices_not_assessed"] == 2
    assert figures["healthy_slices_used"] == 2  # answered and assessed: slices 1 and 2
    assert figures["false_alarm_rate"] == 0.5
    assert figures["false_alarm_rate_answered"] == 0.75

    flagged = _answer(classes)
    for s, ok in zip(flagged["slices"], [True, False, True, True, True], strict=True):
        s["assessed"] = ok
    per_slice = VolumeAnswer("h", "test", "h.nii.gz", "healthy", "T1", "none")
    read_answer(per_slice, flagged)
    assert per_slice.called() == [True, False, False, False, True]
    assert per_slice.supporting is None


def test_a_slice_calls_a_tumour_by_its_tumour_probability_and_the_stated_threshold() -> None:
    body = _answer(["No Tumor", "No Tumor", "Glioma"], supporting_slices=[2])
    body["slices"][1]["tumour_probability"] = 55.0  # No Tumor most likely, yet over 50%
    body["slices"][2]["tumour_probability"] = 65.0
    record = VolumeAnswer("h", "test", "h.nii.gz", "healthy", "T1", "none")
    read_answer(record, body)
    assert record.called() == [False, True, True] and record.supporting == [2]
    body["summary"]["slice_threshold"] = 0.6
    read_answer(record, body)
    assert record.called() == [False, False, True] and record.threshold_stated


def test_a_volume_refused_whole_counts_against_sensitivity_and_specificity(tmp_path
                                                                          ) -> None:
    refused = VolumeAnswer("t", "test", "t.nii.gz", "tumour", "T1c", "glioma (HGG)",
                           error="None of the slices looks like a brain MRI",
                           error_code="NOT_BRAIN_MRI", core_cm2=[0.0, 3.0],
                           any_label=[False, True])
    healthy = VolumeAnswer("h", "test", "h.nii.gz", "healthy", "T1", "none",
                           error="no", error_code="NOT_BRAIN_MRI")
    series = side_figures([refused, healthy])["series"]
    assert series["sensitivity"] == 0.0 and series["specificity"] == 0.0
    assert series["refused_whole"] == 2
    plot_volume(refused, tmp_path / "refused.png")  # says why instead of a curve
    assert (tmp_path / "refused.png").stat().st_size > 0


def test_the_command_line(checker, tmp_path, monkeypatch, capsys) -> None:
    from braintumor.cli import main

    _, _, model_path = checker
    volumes_folder(tmp_path / "volumes")
    monkeypatch.setenv("OOD_POLICY", "warn")
    out = tmp_path / "out"
    assert main(["evaluate-series", str(tmp_path / "volumes"), "--model", str(model_path),
                 "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["summary"]["test"]["series_sensitivity"] == 1.0
    assert printed["summary"]["test"]["by_core_area"]["< 1 cm2"] == 0.0
    assert (out / "report.md").is_file() and len(list(out.glob("*.png"))) == 2
    assert main(["evaluate-series", str(tmp_path), "--model", str(model_path)]) == 2
    assert "manifest.tsv" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.dataset
def test_real_volumes_one_healthy_and_one_tumour_case(tmp_path) -> None:
    """Two test-side volumes of BRAINTUMOR_VOLUMES (a healthy head, a glioma T1c with its
    label map) through the default model: every slice answered or refused, the label
    map's slices as many as the image's, tumour slices in the area bins."""
    folder = os.environ.get("BRAINTUMOR_VOLUMES")
    if not folder or not (Path(folder) / "manifest.tsv").is_file():
        pytest.skip("BRAINTUMOR_VOLUMES is not set to a volumes folder")
    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.model import load_model
    from braintumor.training.volumes import case_split

    root = Path(folder).resolve()
    with open(root / "manifest.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    test_rows = [r for r in rows if case_split(r["case"]) == "test"]
    healthy = next(r for r in test_rows if r["kind"] == "healthy")
    tumour = next(r for r in test_rows if r["sequence"] == "T1c" and r["label_path"])
    picked = []
    for row in (healthy, tumour):
        picked.append({**row, "path": str(root / row["path"]),
                       "label_path": str(root / row["label_path"]) if row["label_path"]
                       else ""})
    with open(tmp_path / "manifest.tsv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(picked)
    settings = Settings()
    report = evaluate_series(Classifier(load_model(settings), settings), settings, tmp_path,
                             tmp_path / "out", cases="test")
    assert [v["case"] for v in report["volumes"]] == [healthy["case"], tumour["case"]]
    glioma = report["volumes"][1]
    assert glioma["error"] is None and len(glioma["core_cm2"]) == len(glioma["classes"])
    assert max(glioma["core_cm2"]) > 1.0
    bins = report["sides"]["test"]["slices"]["by_core_area"]
    assert sum(b["slices"] for b in bins) == sum(a > 0 for a in glioma["core_cm2"])
    assert np.isfinite([p for p in glioma["probabilities"] if p is not None]).all()
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def _lateral_tumour(root: Path, case: str) -> None:
    """Move a synthetic tumour case's checkerboard (and its labels) into the high-index
    (right) hemisphere, so its left hemisphere holds no label."""
    import nibabel as nib
    from volume_helpers import checkerboard, head_plane

    folder = root / "tumour" / case
    image = nib.load(folder / "t1ce.nii.gz")
    values = np.asarray(image.dataobj, dtype=np.float32).copy()
    labels = np.zeros(values.shape, np.float32)
    values[:] = head_plane()[..., None]  # the oval alone
    for k in (4, 5, 6):
        values[84:100, 56:72, k] = 300.0 * checkerboard(16)
        labels[82:102, 54:74, k] = 2
        labels[84:100, 56:72, k] = 1
    nib.save(nib.Nifti1Image(values, image.affine), folder / "t1ce.nii.gz")
    nib.save(nib.Nifti1Image(labels, image.affine), folder / "seg.nii.gz")


def test_derived_volumes_are_made_from_the_cases_and_reported_apart(checker, tmp_path):
    from braintumor.training.volumes import derived_volumes

    classifier, settings, _ = checker
    root = tmp_path / "volumes"
    cases = volumes_folder(root, ("test",))
    _lateral_tumour(root, cases["test"]["tumour"])
    derived = derived_volumes(read_manifest(root))
    assert [(d.case, d.kind, d.variant) for d in derived] == [
        (cases["test"]["healthy"], "healthy", "brain"),
        (cases["test"]["healthy"], "healthy", "brain-zscored"),
        (cases["test"]["tumour"], "tumour", "zscored"),
        (cases["test"]["tumour"], "healthy", "mirrored-left")]  # the right one has labels
    report = evaluate_series(classifier, settings, root, tmp_path / "out", cases="test",
                             derived=True)
    assert report["sides"]["test"]["series"]["volumes"] == 2  # the stored files alone
    figures = report["derived"]["test"]["series"]
    assert figures["healthy_volumes"] == 3 and figures["tumour_volumes"] == 1
    assert figures["specificity"] == 1.0  # no checkerboard in any: No Tumor
    assert figures["sensitivity"] == 1.0  # z-scored, the checkerboard is still seen
    assert report["sides"]["test"]["series"]["sensitivity"] == 1.0
    mirrored = next(v for v in report["volumes"] if v["variant"] == "mirrored-left")
    assert mirrored["path"].endswith("#mirrored-left") and mirrored["error"] is None
    assert len(list((tmp_path / "out").glob("*.png"))) == 6
    assert "derived volumes" in (tmp_path / "out" / "report.md").read_text()


def _record(kind: str, probabilities: list[float], **extra) -> VolumeAnswer:
    n = len(probabilities)
    return VolumeAnswer(case=kind, split="test", path=f"{kind}.nii.gz", kind=kind,
                        sequence="T1", tumour_type="glioma" if kind == "tumour" else "none",
                        spacing_mm=2.0, probabilities=list(probabilities),
                        refused=[False] * n, assessed=[True] * n,
                        classes=["No Tumor"] * n, **extra)


def test_short_series_are_replayed_with_the_short_series_rule() -> None:
    from braintumor.evaluation.series_eval import short_series_windows

    # 40 slices at 2 mm: series of 6 slices 3 apart start at 0..24 (25 of them); two
    # stray false alarms 6 slices apart share the series starting at 11, 14, 17 and 20
    healthy = [5.0] * 40
    healthy[20] = healthy[26] = 90.0
    windows = short_series_windows(_record("healthy", healthy))
    assert len(windows) == 25
    assert [k for k, (called, _) in enumerate(windows) if called] == [11, 14, 17, 20]
    # not assessed levels bound the series; a refused slice is not counted
    record = _record("healthy", healthy)
    record.assessed = [10 <= k < 36 for k in range(40)]
    assert len(short_series_windows(record)) == 36 - 10 - 15
    record.refused[26] = True
    assert not any(called for called, _ in short_series_windows(record))
    # a tumour volume: slices 10-19 hold >= 1 cm2 of core, called at 90%
    tumour = [90.0 if 10 <= k < 20 else 5.0 for k in range(40)]
    core = [3.0 if 10 <= k < 20 else 0.0 for k in range(40)]
    windows = short_series_windows(_record("tumour", tumour, core_cm2=core))
    with_tumour = [called for called, slices in windows if slices >= 2]
    assert with_tumour and all(with_tumour)
    figures = side_figures([_record("healthy", healthy),
                            _record("tumour", tumour, core_cm2=core)])["short_series"]
    assert figures["healthy_called_tumour"] == 4 and figures["healthy_series"] == 25
    assert figures["tumour_sensitivity"] == 1.0


def test_zscored_brains_have_zero_mean_unit_variance_and_the_lowest_background() -> None:
    from braintumor.training.volumes import zscored

    values = np.zeros((4, 4, 2), np.float32)
    values[1:3, 1:3] = [[10.0, 20.0], [30.0, 40.0]]
    out = zscored(values)
    brain = out[values != 0]
    assert abs(brain.mean()) < 1e-6 and abs(brain.std() - 1.0) < 1e-5
    assert out[values == 0].max() < brain.min() and (out[values == 0] < 0).all()
