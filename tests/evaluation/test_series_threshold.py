"""``braintumor fit-series-threshold``: the volume threshold a model carries, chosen on
the validation volumes by replaying the series rule's support step."""

from __future__ import annotations

import json

import pytest
from volume_helpers import save_checker_model, volumes_folder

from braintumor.evaluation.series_threshold import (
    choose_threshold,
    threshold_table,
    volume_call,
)
from braintumor.evaluation.series_volumes import VolumeAnswer


def record(kind: str, probabilities: list[float], spacing: float = 2.0, **extra
           ) -> VolumeAnswer:
    """A volume's answer: tumour probabilities (percent) per slice, all assessed."""
    n = len(probabilities)
    return VolumeAnswer(case=kind, split="val", path=f"{kind}.nii.gz", kind=kind,
                        sequence="T1", tumour_type="glioma" if kind == "tumour" else "",
                        spacing_mm=spacing, probabilities=list(probabilities),
                        refused=[False] * n, assessed=[True] * n,
                        classes=["No Tumor"] * n, **extra)


#: A healthy head with a 3-slice run at 80% (a false alarm a firm threshold removes), and
#: a tumour volume whose run sits at 93%.
HEALTHY = record("healthy", [5.0] * 10 + [80.0] * 3 + [5.0] * 10)
TUMOUR = record("tumour", [5.0] * 10 + [93.0] * 4 + [5.0] * 10)


def test_the_support_step_is_replayed_at_each_threshold():
    assert volume_call(HEALTHY, 0.7) is True and volume_call(HEALTHY, 0.9) is False
    assert volume_call(TUMOUR, 0.9) is True and volume_call(TUMOUR, 0.95) is False
    # two slices at 2 mm do not span 6 mm; no spacing or a refusal is no volume answer
    assert volume_call(record("tumour", [5.0] * 10 + [99.0] * 2 + [5.0] * 10), 0.5) is False
    assert volume_call(record("tumour", [99.0] * 20, spacing=0.0), 0.5) is None
    assert volume_call(record("tumour", [99.0] * 20, error="refused"), 0.5) is None
    assert volume_call(record("tumour", [99.0] * 5), 0.5) is None  # too few slices


def test_the_lowest_threshold_of_the_best_balanced_accuracy_is_chosen():
    rows = threshold_table([HEALTHY, TUMOUR])
    by = {row["threshold"]: row for row in rows}
    assert by[0.7]["balanced_accuracy"] == 0.5  # the false alarm
    assert by[0.9]["balanced_accuracy"] == 1.0 and by[0.95]["balanced_accuracy"] == 0.5
    assert choose_threshold(rows) == 0.9
    assert by[0.9] == {"threshold": 0.9, "healthy": 1, "healthy_no_tumour": 1, "tumours": 1,
                       "tumours_called": 1, "balanced_accuracy": 1.0, "healthy_slices": 23,
                       "healthy_slices_called": 0, "slice_false_alarm_rate": 0.0}
    assert by[0.7]["healthy_slices_called"] == 3


def test_of_tied_thresholds_the_lowest_within_the_slice_false_alarm_rate_is_chosen():
    # 200 healthy slices: four stray ones at 65% and one at 75%, never a run the support
    # step takes; every threshold answers both volumes right
    scattered = [5.0] * 200
    for k, p in zip((20, 60, 100, 140, 180), (65.0, 65.0, 65.0, 65.0, 75.0), strict=True):
        scattered[k] = p
    rows = threshold_table([record("healthy", scattered), TUMOUR])
    by = {row["threshold"]: row for row in rows}
    assert {by[t]["balanced_accuracy"] for t in (0.5, 0.6, 0.7, 0.8, 0.9)} == {1.0}
    assert by[0.6]["slice_false_alarm_rate"] == 0.025  # 5 of 200
    assert by[0.7]["slice_false_alarm_rate"] == 0.005
    assert choose_threshold(rows) == 0.7  # 0.5 and 0.6 call more than 1% of them
    assert choose_threshold(rows, false_alarm_rate=0.03) == 0.5
    assert choose_threshold(rows, false_alarm_rate=0.0) == 0.8  # the first without any
    scattered[190] = 99.5  # a stray slice no candidate removes
    rows = threshold_table([record("healthy", scattered), TUMOUR])
    assert min(row["slice_false_alarm_rate"] for row in rows) == 0.005
    assert choose_threshold(rows, false_alarm_rate=0.0) == 0.8  # none within: the fewest


def test_a_volume_refused_whole_counts_against_every_threshold():
    rows = threshold_table([HEALTHY, TUMOUR, record("tumour", [99.0] * 20, error="no")])
    assert max(row["balanced_accuracy"] for row in rows) == pytest.approx(0.75)


def test_the_command_writes_the_threshold_the_series_answer_then_uses(
        tmp_path, monkeypatch, capsys):
    from braintumor.cli import main
    from braintumor.model.metadata import load_metadata

    model = save_checker_model(tmp_path / "checker.keras")
    volumes_folder(tmp_path / "volumes", ("val", "test"))
    monkeypatch.setenv("OOD_POLICY", "warn")
    out = tmp_path / "fitted.keras"
    assert main(["fit-series-threshold", str(tmp_path / "volumes"), "--model", str(model),
                 "--out", str(out)]) == 0
    written = json.loads(capsys.readouterr().out)
    # the checker model sees its checkerboards at every threshold: the lowest is chosen
    assert written["volume_slice_threshold"] == 0.5
    assert [r["threshold"] for r in written["candidates"]][:2] == [0.5, 0.6]
    assert load_metadata(out).series == written
    assert load_metadata(model).series == {}  # --out leaves the model as it was

    out_dir = tmp_path / "report"
    assert main(["evaluate-series", str(tmp_path / "volumes"), "--model", str(out),
                 "--out", str(out_dir)]) == 0
    report = json.loads((out_dir / "report.json").read_text())
    assert {v["threshold"] for v in report["volumes"]} == {50.0}
    assert main(["fit-series-threshold", str(tmp_path), "--model", str(model)]) == 2


def test_derived_healthy_volumes_join_the_healthy_side_of_the_choice(tmp_path, monkeypatch,
                                                                      capsys):
    from braintumor.cli import main

    model = save_checker_model(tmp_path / "checker.keras")
    volumes_folder(tmp_path / "volumes", ("val",))
    monkeypatch.setenv("OOD_POLICY", "warn")
    assert main(["fit-series-threshold", str(tmp_path / "volumes"), "--model", str(model),
                 "--out", str(tmp_path / "fitted.keras"), "--derived"]) == 0
    written = json.loads(capsys.readouterr().out)
    # the healthy head, skull-stripped and that z-scored; the tumour and it z-scored (it
    # sits on the midline, so neither of its hemispheres is label-free)
    assert {r["healthy"] for r in written["candidates"]} == {3}
    assert {r["tumours"] for r in written["candidates"]} == {2}
    assert "3 of them derived" in written["chosen_on"]
