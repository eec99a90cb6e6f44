"""The Grad-CAM formula itself, against a plain numpy computation of the same maps."""

from __future__ import annotations

import numpy as np

from braintumor.model.gradcam import grad_cam


def reference(feature_map: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Selvaraju et al.: ReLU(sum_k mean(dS/dA_k) * A_k), divided by its peak."""
    out = []
    for maps, grads in zip(feature_map, gradients, strict=True):
        weights = grads.mean(axis=(0, 1))  # one weight per channel
        cam = np.maximum((maps * weights).sum(axis=-1), 0.0)
        out.append(cam / cam.max() if cam.max() > 0 else cam)
    return np.stack(out)


def test_grad_cam_matches_the_formula():
    rng = np.random.default_rng(0)
    feature_map = rng.uniform(0, 2, (3, 5, 7, 4)).astype(np.float32)
    gradients = rng.normal(0, 1, (3, 5, 7, 4)).astype(np.float32)
    cam = np.asarray(grad_cam(feature_map, gradients))
    assert cam.shape == (3, 5, 7)
    np.testing.assert_allclose(cam, reference(feature_map, gradients), rtol=1e-5, atol=1e-6)
    assert cam.min() >= 0.0
    assert np.allclose(cam.max(axis=(1, 2))[cam.max(axis=(1, 2)) > 0], 1.0)


def test_grad_cam_follows_the_channel_the_class_depends_on():
    """Two channels light up different corners; the gradient favours the second."""
    feature_map = np.zeros((1, 4, 4, 2), np.float32)
    feature_map[0, 0, 0, 0] = 1.0
    feature_map[0, 3, 3, 1] = 1.0
    gradients = np.zeros_like(feature_map)
    gradients[..., 1] = 1.0
    cam = np.asarray(grad_cam(feature_map, gradients))[0]
    assert cam[3, 3] == 1.0 and cam[0, 0] == 0.0


def test_grad_cam_of_nothing_in_favour_is_all_zeros_not_nan():
    feature_map = np.ones((1, 3, 3, 2), np.float32)
    gradients = -np.ones_like(feature_map)
    cam = np.asarray(grad_cam(feature_map, gradients))
    assert np.isfinite(cam).all() and not cam.any()
