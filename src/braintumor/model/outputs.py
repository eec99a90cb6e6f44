"""What a model pass returns, whichever runtime ran it, and the one loop that batches it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from braintumor.preprocessing import InputSpec, to_model_input


@dataclass(frozen=True)
class ModelOutputs:
    """The model's answers for a batch of N images (no Grad-CAM: see ``explain``)."""

    #: (N, classes) the head's logits, before the temperature.
    logits: np.ndarray
    #: (N, classes) the served calibrated probabilities (with a memory, its vote); with
    #: ``head_only`` the calibrated head's own (what a memory is fitted on).
    probabilities: np.ndarray
    #: (N, feature_dims) the pooled penultimate features (the head's input) that the
    #: not-a-brain-MRI check and the memory read.
    features: np.ndarray


def in_batches(run: Callable[[np.ndarray], ModelOutputs], pixels: np.ndarray,
               spec: InputSpec, batch_size: int = 64) -> ModelOutputs:
    """``run``'s outputs of canonical uint8 pixels (N, H, W), scaled ``batch_size`` at a time
    so that only uint8 pixels are held for the whole set (evaluation, fit-ood, fit-memory)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    chunks = [run(to_model_input(pixels[i:i + batch_size], spec))
              for i in range(0, len(pixels), batch_size)]
    if not chunks:
        raise ValueError("no images to run the model on")
    return ModelOutputs(*(np.concatenate([getattr(c, f.name) for c in chunks])
                          for f in fields(ModelOutputs)))
