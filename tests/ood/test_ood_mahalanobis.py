"""The tied-covariance Mahalanobis fit: scores, shrinkage, storage."""

from __future__ import annotations

import io

import numpy as np
import pytest

from braintumor.ood.layout import layout
from braintumor.ood.mahalanobis import fit, ledoit_wolf_shrinkage, pack, unpack
from conftest import scan_like


def clusters(n: int = 400, dims: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    centres = rng.normal(0, 10, (4, dims))
    mixing = rng.normal(0, 1, (dims, dims))
    features = centres[labels] + rng.normal(0, 1, (n, dims)) @ mixing
    return features, labels, centres, mixing


def test_in_distribution_scores_about_one_and_far_points_high():
    features, labels, centres, mixing = clusters()
    scorer = fit(features, labels, 4).scorer()
    inside = scorer.score(features)
    assert 0.7 < np.median(inside) < 1.2
    rng = np.random.default_rng(1)
    fresh = centres[np.arange(200) % 4] + rng.normal(0, 1, (200, 12)) @ mixing
    assert 0.7 < np.median(scorer.score(fresh)) < 1.3
    far = centres[0] + 30 * np.linalg.norm(mixing, axis=0)
    assert scorer.score(far)[0] > 20 * np.median(inside)


def test_score_is_the_nearest_class():
    features, labels, _, _ = clusters()
    stats = fit(features, labels, 4)
    scorer = stats.scorer()
    for k in range(4):
        exact = stats.means[k]
        assert scorer.score(exact)[0] == pytest.approx(0.0, abs=1e-3)


def test_statistics_of_the_leading_values_read_only_those():
    """An outline model's statistics describe its backbone's part of a longer vector."""
    features, labels, _, _ = clusters()
    scorer = fit(features, labels, 4).scorer()
    extra = np.random.default_rng(3).normal(0, 50, (len(features), 5))
    longer = np.concatenate([features, extra], axis=1)
    np.testing.assert_allclose(scorer.score(longer), scorer.score(features), rtol=1e-6)
    np.testing.assert_allclose(scorer.score(longer[0]), scorer.score(features[:1]), rtol=1e-6)
    with pytest.raises(ValueError, match="features of 11 values"):
        scorer.score(features[:, :11])


def test_dead_features_and_few_samples_still_fit():
    rng = np.random.default_rng(2)
    features = np.maximum(rng.normal(0, 1, (20, 50)), 0)
    features[:, :10] = 0.0  # ReLU features that never fire
    stats = fit(features, np.arange(20) % 4, 4)
    assert np.all(np.isfinite(stats.precision))
    assert np.all(np.isfinite(stats.scorer().score(features)))
    assert 0.0 <= stats.shrinkage <= 1.0


def test_ledoit_wolf_shrinks_little_with_plenty_of_correlated_data_and_much_with_little():
    rng = np.random.default_rng(3)
    mixing = rng.normal(0, 1, (10, 10))
    plenty = rng.normal(0, 1, (5000, 10)) @ mixing
    few = rng.normal(0, 1, (12, 10))  # identity covariance, estimated from 12 samples
    assert ledoit_wolf_shrinkage(plenty - plenty.mean(0)) < 0.05
    assert ledoit_wolf_shrinkage(few - few.mean(0)) > 0.3


def test_missing_class_is_refused():
    features, labels, _, _ = clusters()
    with pytest.raises(ValueError, match="every class"):
        fit(features[labels != 2], labels[labels != 2], 4)


def test_pack_round_trip_keeps_scores():
    features, labels, _, _ = clusters()
    fits = {"features": fit(features, labels, 4), "layout": fit(features[:, :5], labels, 4)}
    restored = unpack(pack(fits))
    assert set(restored) == {"features", "layout"}
    for name, stats in fits.items():
        vectors = features if name == "features" else features[:, :5]
        np.testing.assert_allclose(restored[name].scorer().score(vectors),
                                   stats.scorer().score(vectors), rtol=1e-4)
    other = io.BytesIO()
    np.savez(other, something=np.zeros(2))
    for data in (other.getvalue(), b"not an npz at all"):
        with pytest.raises(ValueError):
            unpack(data)


def test_layout_ignores_brightness_and_contrast():
    pixels = np.asarray(scan_like((160, 160)), dtype=np.float32)
    flatter = (pixels * 0.6 + 30).astype(np.uint8)  # less contrast, brighter background
    a, b = layout(pixels.astype(np.uint8)), layout(flatter)
    assert a.shape == (1, 64)
    np.testing.assert_allclose(a, b, atol=0.05)
