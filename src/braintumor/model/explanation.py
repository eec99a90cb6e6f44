"""The result of one explained forward pass, whichever runtime computed it.

A module of its own, without TensorFlow or ONNX Runtime, so that the Keras model
(:mod:`braintumor.model.loaded`) and the ONNX one (:mod:`braintumor.model.onnx_runtime`)
return the same class and the code above them reads one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Explanation:
    """Result of one explained forward pass, for a batch."""

    probabilities: np.ndarray  # (N, classes), calibrated
    logits: np.ndarray  # (N, classes), before temperature
    cam: np.ndarray  # (N, h, w) in [0, 1], at the feature map's resolution
    features: np.ndarray | None = None  # (N, D) penultimate features (the head's input)
    #: (N, H, W) tumour-outline probabilities in the model's input space, from the same
    #: pass; None for a model without a segmentation layer.
    outline: np.ndarray | None = None
