"""One default class list and one rule for the No Tumor class, used by every layer."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.classes import DEFAULT_CLASS_NAMES, is_no_tumour, no_tumour_index
from braintumor.evaluation.collections import tumour_detection
from braintumor.training.partial import allowed_matrix
from braintumor.training.recipe import TrainConfig


@pytest.mark.parametrize("name", ["No Tumor", "notumor", "no_tumour", "Healthy"])
def test_the_spellings_of_no_tumour(name):
    assert is_no_tumour(name)
    assert no_tumour_index(["Glioma", name]) == 1


def test_a_list_without_no_tumour():
    assert not is_no_tumour("Glioma")
    assert no_tumour_index(["Glioma", "Meningioma"]) is None
    with pytest.raises(ValueError, match="no tumour"):
        tumour_detection(np.array([0]), np.array([0]), ["Glioma", "Meningioma"])


def test_the_recipe_and_the_partial_labels_follow_the_shared_list_and_rule():
    assert TrainConfig(data="d", out="o").class_names == list(DEFAULT_CLASS_NAMES)
    # "a tumour of unknown type" allows every class but the healthy one, however spelt
    assert allowed_matrix(["glioma", "notumor", "pituitary"])[3].tolist() == [1, 0, 1]
