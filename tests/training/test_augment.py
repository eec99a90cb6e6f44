"""The collection-shift augmentation: identity at inference, varied and in range in training."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.preprocessing import InputSpec
from braintumor.training.augment import CollectionShift, source_robust_augmentation
from conftest import scan_like


def _batch(count: int = 6) -> np.ndarray:
    return np.stack([np.asarray(scan_like((48, 48), seed=i), np.float32) / 255.0
                     for i in range(count)])[..., None]


def test_collection_shift_is_the_identity_outside_training() -> None:
    x = _batch()
    np.testing.assert_array_equal(np.asarray(CollectionShift(1.0)(x, training=False)), x)


def test_collection_shift_changes_every_slice_and_stays_in_range() -> None:
    x = _batch()
    out = np.asarray(CollectionShift(1.0, seed=3)(x, training=True))
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert all(np.abs(out[i] - x[i]).mean() > 0.005 for i in range(len(x)))


def test_the_source_robust_augmentation_needs_unit_scaling() -> None:
    with pytest.raises(ValueError, match="unit"):
        source_robust_augmentation(InputSpec((32, 32), scaling="symmetric"))
    layers = [layer.name for layer in source_robust_augmentation(InputSpec((32, 32))).layers]
    assert layers[-1] == "collection_shift" and len(layers) > 1
