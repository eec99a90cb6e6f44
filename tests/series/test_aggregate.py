"""The series rule (README "Series"), on probabilities chosen by hand."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.series.aggregate import aggregate, no_tumour_index

NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


def p(g: float, m: float, n: float, pit: float) -> np.ndarray:
    return np.array([g, m, n, pit])


def test_all_no_tumour_slices_make_a_no_tumour_series():
    slices = [p(0.1, 0.1, 0.7, 0.1), p(0.05, 0.05, 0.85, 0.05), p(0.2, 0.1, 0.6, 0.1)]
    summary = aggregate(slices, NAMES)
    assert summary.class_id == 2
    np.testing.assert_allclose(summary.probabilities, np.mean(slices, axis=0))
    # key: the highest tumour probability (1 - 0.6), the third slice
    assert summary.key_index == 2
    assert summary.tumour_probability == pytest.approx(0.4)
    assert (summary.answered, summary.refused) == (3, 0)


def test_one_tumour_slice_makes_a_tumour_series():
    slices = [p(0.0, 0.1, 0.9, 0.0)] * 5 + [p(0.1, 0.6, 0.3, 0.0)] + [p(0.0, 0.0, 1.0, 0.0)]
    summary = aggregate(slices, NAMES)
    assert summary.class_id == 1 and summary.key_index == 5
    np.testing.assert_allclose(summary.probabilities, slices[5])  # mean over its class
    assert summary.tumour_probability == pytest.approx(0.7)
    assert list(summary.class_counts) == [0, 1, 6, 0]


def test_the_tumour_class_of_most_slices_wins_not_the_most_confident_slice():
    slices = [p(0.95, 0.0, 0.05, 0.0),  # the key slice: most tumour
              p(0.0, 0.6, 0.4, 0.0), p(0.0, 0.55, 0.45, 0.0), p(0.0, 0.7, 0.3, 0.0)]
    summary = aggregate(slices, NAMES)
    assert summary.class_id == 1  # three Meningioma slices against one Glioma
    assert summary.key_index == 0  # but the slice to look at is the Glioma one
    np.testing.assert_allclose(summary.probabilities, np.mean(slices[1:], axis=0))
    assert summary.probabilities.argmax() == summary.class_id


def test_a_tie_in_slice_counts_goes_to_the_larger_probability_sum():
    slices = [p(0.51, 0.0, 0.49, 0.0), p(0.0, 0.9, 0.1, 0.0)]
    assert aggregate(slices, NAMES).class_id == 1  # 0.9 summed beats 0.51


def test_refused_slices_are_left_out_and_counted():
    slices = [None, p(0.0, 0.0, 0.2, 0.8), None]
    summary = aggregate(slices, NAMES)
    assert summary.key_index == 1 and summary.class_id == 3
    assert (summary.answered, summary.refused) == (1, 2)
    assert aggregate([None, None], NAMES) is None


def test_first_slice_wins_a_tie_for_key_slice():
    slices = [p(0.0, 0.0, 0.9, 0.1), p(0.0, 0.0, 0.9, 0.1)]
    assert aggregate(slices, NAMES).key_index == 0


def test_without_a_no_tumour_class_the_most_confident_slice_is_key():
    names = ["a", "b", "c"]
    assert no_tumour_index(names) is None
    assert no_tumour_index(["x", "no_tumour"]) == 1
    summary = aggregate([np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.85, 0.05]),
                         np.array([0.6, 0.2, 0.2])], names)
    assert summary.key_index == 1 and summary.tumour_probability is None
    assert summary.class_id == 0  # two slices of "a"
