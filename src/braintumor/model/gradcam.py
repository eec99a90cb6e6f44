"""Grad-CAM: where in the feature map the network found its evidence for a class.

The map of one image is the ReLU of the feature map's channels weighted by the mean
gradient of the class score over each channel, divided by its own peak so that it runs
from 0 to 1 (Selvaraju et al., 2017). The class score is a logit, not a probability: a
saturated softmax has near-zero gradients and would give an empty map.

TensorFlow is imported inside the function only: the rest of :mod:`braintumor.model`
(metadata, archive) is usable without it, e.g. by ``braintumor info``.
"""

from __future__ import annotations

from typing import Any


def grad_cam(feature_map: Any, gradients: Any) -> Any:
    """(N, h, w) maps in [0, 1] from a batch's feature map and the class score's gradient
    with respect to it, both (N, h, w, channels).

    A map whose every weighted channel sum is negative (nothing in the image speaks for
    the class) is all zeros rather than a division by zero.
    """
    import tensorflow as tf  # optional heavy dependency: only where a model runs

    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1))
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return tf.math.divide_no_nan(cam, peak)
