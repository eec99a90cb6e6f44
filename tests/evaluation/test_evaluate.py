"""Evaluation: the metrics on hand-checked examples, and one run end to end on a tiny
model and a synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from braintumor.evaluation.markdown import confusion_text
from braintumor.evaluation.metrics import (
    average_ranks,
    confusion_matrix,
    macro_f1,
    one_vs_rest_auc,
    per_class_metrics,
    reliability_bins,
    roc_auc,
    served_figures,
    subset_metrics,
)
from braintumor.evaluation.run import evaluate, hard_subset_index, read_hard_subset

CLASS_FOLDERS = ["glioma", "meningioma", "notumor", "pituitary"]


def test_auc_perfect_reversed_and_tied() -> None:
    positive = np.array([0, 0, 1, 1], dtype=bool)
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), positive) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), positive) == 0.0
    assert roc_auc(np.full(4, 0.5), positive) == 0.5


def test_auc_partial_ties_count_one_half() -> None:
    # Pairs (pos, neg): 0.8>0.2, 0.8>0.5, 0.5=0.5 (1/2), 0.5>0.2 -> 3.5 of 4.
    assert roc_auc(np.array([0.2, 0.5, 0.5, 0.8]), np.array([0, 0, 1, 1], bool)) == 0.875


def test_auc_undefined_without_both_classes() -> None:
    assert roc_auc(np.array([0.1, 0.9]), np.array([1, 1], bool)) is None
    assert roc_auc(np.array([0.1, 0.9]), np.array([0, 0], bool)) is None


def test_average_ranks_share_ties() -> None:
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_one_vs_rest_auc_macro_skips_absent_class() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    per_class, macro = one_vs_rest_auc(probs, np.array([0, 1, 0]))
    assert per_class == [1.0, 1.0, None]
    assert macro == 1.0


def test_confusion_matrix_rows_true_columns_predicted() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 1, 1, 1, 2, 0])
    assert confusion_matrix(labels, predictions, 3).tolist() == [[1, 1, 0], [0, 2, 0],
                                                                  [1, 0, 1]]


def test_per_class_and_macro_f1_by_hand() -> None:
    matrix = confusion_matrix(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0]), 3)
    metrics = per_class_metrics(matrix)
    # class 0: P 1/2 R 1/2 F1 1/2; class 1: P 2/3 R 1 F1 4/5; class 2: P 1 R 1/2 F1 2/3
    np.testing.assert_allclose(metrics["precision"], [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(metrics["recall"], [1 / 2, 1.0, 1 / 2])
    np.testing.assert_allclose(metrics["f1"], [1 / 2, 4 / 5, 2 / 3])
    assert metrics["support"].tolist() == [2, 2, 2]
    assert macro_f1(matrix) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)


def test_macro_f1_ignores_class_never_seen_nor_predicted() -> None:
    matrix = confusion_matrix(np.array([0, 1]), np.array([0, 1]), 4)
    assert macro_f1(matrix) == 1.0
    assert per_class_metrics(matrix)["precision"].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_reliability_bins_match_confidence() -> None:
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4]])
    bins = reliability_bins(probs, np.array([0, 1, 0]), bins=10)
    assert sum(bins["count"]) == 3
    assert bins["count"][9] == 2 and bins["accuracy"][9] == 0.5
    assert bins["count"][5] == 1 and bins["accuracy"][5] == 1.0
    assert bins["accuracy"][0] is None


def test_subset_metrics_is_json_ready_and_calibration_keeps_predictions() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (40, 4))
    labels = rng.integers(0, 4, 40)
    metrics = subset_metrics(logits, labels, 2.0, ["a", "b", "c", "d"])
    json.dumps(metrics)
    assert metrics["n"] == 40
    assert metrics["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert sum(m["support"] for m in metrics["per_class"].values()) == 40


def test_hard_subset_reading_and_matching(tmp_path: Path) -> None:
    listing = tmp_path / "hard.txt"
    listing.write_text("# comment\n\nTesting/glioma/a.jpg\nTesting/notumor/b.jpg  # note\n")
    listed = read_hard_subset(listing)
    assert listed == ["Testing/glioma/a.jpg", "Testing/notumor/b.jpg"]
    paths = ["glioma/a.jpg", "glioma/b.jpg", "notumor/b.jpg", "pituitary/a.jpg"]
    assert hard_subset_index(paths, listed).tolist() == [0, 2]
    assert hard_subset_index(paths, ["Training/x/y.jpg"]).size == 0


def test_confusion_text_aligns_columns() -> None:
    text = confusion_text([[12, 0], [3, 100]], ["Glioma", "No Tumor"])
    lines = text.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1


@pytest.fixture(scope="module")
def tiny_eval_setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A bare 32x32 grey model, 4 class folders of 3 PNGs, and a hard list of two."""
    import keras

    root = tmp_path_factory.mktemp("evaluate")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ])
    model_path = root / "m.keras"
    model.save(model_path)

    rng = np.random.default_rng(0)
    data = root / "Testing"
    for label, folder in enumerate(CLASS_FOLDERS):
        (data / folder).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 80, (40, 40)) + 40 * label
            Image.fromarray(pixels.astype(np.uint8), "L").save(data / folder / f"img{i}.png")
    hard = root / "hard_test_subset.txt"
    hard.write_text("# two images\nTesting/glioma/img0.png\nTesting/notumor/img1.png\n")
    return model_path, data, hard


def test_evaluate_end_to_end(tiny_eval_setup, tmp_path: Path) -> None:
    model_path, data, hard = tiny_eval_setup
    out = tmp_path / "report"
    report = evaluate(model_path, data, out, hard_subset=hard, batch_size=5)

    for name in ("report.json", "report.md", "confusion_matrix.png",
                 "confusion_matrix_hard.png", "reliability.png"):
        assert (out / name).is_file(), name
    for name in ("confusion_matrix.png", "confusion_matrix_hard.png", "reliability.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    summary = report["summary"]
    assert summary["n"] == 12 and summary["n_hard"] == 2
    for key in ("accuracy", "macro_f1", "hard_accuracy", "hard_macro_f1", "ece",
                "ece_calibrated"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["nll"] >= 0 and summary["nll_calibrated"] >= 0

    saved = json.loads((out / "report.json").read_text())
    assert saved["summary"] == summary
    assert saved["hard_subset"]["used"] and saved["hard_subset"]["matched"] == 2
    assert np.sum(saved["subsets"]["all"]["confusion_matrix"]) == 12
    markdown = (out / "report.md").read_text()
    assert "## Baselines" in markdown and "97.64%" in markdown and "93.47%" in markdown
    assert "confusion_matrix_hard.png" in markdown


def test_served_figures_count_refusals_as_the_client_sees_them() -> None:
    paths = ["glioma/a.jpg", "glioma/b.jpg", "meningioma/c.jpg", "notumor/d.jpg"]
    labels = np.array([0, 0, 1, 2])
    predicted = np.array([0, 1, 1, 2])  # b is wrong
    served = served_figures(predicted, labels, paths, ["meningioma/c.jpg"])
    assert (served["answered"], served["refused"]) == (3, 1)
    assert served["accuracy_of_answers"] == pytest.approx(2 / 3)  # a, d right; b wrong
    assert served["accuracy_refusals_as_errors"] == pytest.approx(2 / 4)
    assert served["refused_but_classified_right"] == 1
    nothing_refused = served_figures(predicted, labels, paths, [])
    assert nothing_refused["accuracy_of_answers"] == pytest.approx(3 / 4)
    assert nothing_refused["accuracy_refusals_as_errors"] == pytest.approx(3 / 4)
