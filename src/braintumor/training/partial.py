"""Partial labels: "a tumour, type unknown".

The Br35H tumour slices (``br35h-tumour/``) say only that a tumour is present. They are
the counter-example the four-class data lacks (in it, every Br35H-looking slice is "No
Tumor"), so they are trained on with a partial label: the set of classes the truth is
among. Label ids ``0..classes-1`` are the ordinary classes; :data:`TUMOUR_ANY` (=
``classes``) means "one of the tumour classes". The loss is the negative log of the
probability the model gives to the allowed set, so such a slice pushes mass off "No Tumor"
without claiming a type; the metric counts an answer right when it falls in the set.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from braintumor.classes import is_no_tumour


def tumour_any(class_names: list[str]) -> int:
    """The label id of "a tumour of unknown type" for these classes (one past the last)."""
    return len(class_names)


def allowed_matrix(class_names: list[str]) -> np.ndarray:
    """(classes + 1, classes) 0/1 rows: which classes each label id allows."""
    classes = len(class_names)
    matrix = np.zeros((classes + 1, classes), dtype=np.float32)
    matrix[np.arange(classes), np.arange(classes)] = 1.0
    matrix[classes] = [0.0 if is_no_tumour(name) else 1.0 for name in class_names]
    return matrix


def is_correct(probabilities: np.ndarray, labels: np.ndarray,
               class_names: list[str]) -> np.ndarray:
    """Per image: does the top class lie in the label's allowed set?"""
    allowed = allowed_matrix(class_names)[np.asarray(labels)]
    return allowed[np.arange(len(labels)), np.asarray(probabilities).argmax(1)] > 0


def partial_label_loss(class_names: list[str], label_smoothing: float = 0.0):
    """Keras loss: -log P(allowed set), mixed with ``label_smoothing`` of the cross-entropy
    against the uniform distribution over all classes (for a full label, exactly Keras'
    label smoothing up to a constant)."""
    matrix = ops.convert_to_tensor(allowed_matrix(class_names))
    smoothing = float(label_smoothing)

    def loss(y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        allowed = ops.take(matrix, labels, axis=0)
        probs = ops.clip(y_pred, 1e-7, 1.0)
        nll = -ops.log(ops.sum(allowed * probs, axis=-1))
        if smoothing:
            spread = -ops.mean(ops.log(probs), axis=-1)
            nll = (1.0 - smoothing) * nll + smoothing * spread
        return nll

    loss.__name__ = "partial_label_loss"
    return loss


class PartialAccuracy(keras.metrics.Mean):
    """Share of images whose top class lies in their label's allowed set."""

    def __init__(self, class_names: list[str], name: str = "accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self._matrix = ops.convert_to_tensor(allowed_matrix(class_names))

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        allowed = ops.take(self._matrix, labels, axis=0)
        top = ops.one_hot(ops.argmax(y_pred, axis=-1), ops.shape(y_pred)[-1])
        return super().update_state(ops.sum(allowed * top, axis=-1), sample_weight=sample_weight)
