"""Partial labels ("a tumour, type unknown"): loss, metric and label resolution."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.training.partial import (
    PartialAccuracy,
    allowed_matrix,
    is_correct,
    partial_label_loss,
    tumour_any,
)

CLASSES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


def test_the_partial_label_allows_every_class_but_no_tumour() -> None:
    matrix = allowed_matrix(CLASSES)
    assert tumour_any(CLASSES) == 4
    np.testing.assert_array_equal(matrix[:4], np.eye(4))
    np.testing.assert_array_equal(matrix[4], [1, 1, 0, 1])


def test_the_loss_of_a_full_label_is_the_cross_entropy() -> None:
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.2, 0.2, 0.5, 0.1]], np.float32)
    loss = np.asarray(partial_label_loss(CLASSES)(np.array([0, 2]), probs))
    np.testing.assert_allclose(loss, -np.log([0.7, 0.5]), rtol=1e-5)


def test_the_loss_of_a_partial_label_is_minus_log_of_the_allowed_mass() -> None:
    """A slice called 60% Glioma, 30% No Tumor: the set {Glioma, Meningioma, Pituitary}
    holds 70%; moving mass between tumour types does not change the loss."""
    a = np.array([[0.6, 0.05, 0.3, 0.05]], np.float32)
    b = np.array([[0.05, 0.6, 0.3, 0.05]], np.float32)
    loss = partial_label_loss(CLASSES)
    np.testing.assert_allclose(np.asarray(loss(np.array([4]), a)), [-np.log(0.7)], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(loss(np.array([4]), a)),
                               np.asarray(loss(np.array([4]), b)), rtol=1e-6)


@pytest.mark.parametrize("label", [0, 4])
def test_label_smoothing_raises_the_loss_of_a_sure_answer(label: int) -> None:
    sure = np.array([[0.97, 0.01, 0.01, 0.01]], np.float32)
    plain = float(np.asarray(partial_label_loss(CLASSES)(np.array([label]), sure))[0])
    smooth = float(np.asarray(partial_label_loss(CLASSES, 0.1)(np.array([label]), sure))[0])
    assert smooth > plain


def test_accuracy_counts_any_tumour_class_right_for_a_partial_label() -> None:
    probs = np.array([[0.1, 0.1, 0.2, 0.6], [0.1, 0.1, 0.7, 0.1], [0.8, 0.1, 0.05, 0.05]],
                     np.float32)
    labels = np.array([4, 4, 1])
    np.testing.assert_array_equal(is_correct(probs, labels, CLASSES), [True, False, False])
    metric = PartialAccuracy(CLASSES)
    metric.update_state(labels, probs)
    assert float(metric.result()) == pytest.approx(1 / 3)
