"""A nearest-neighbour memory of the training scans' features: the classifier's vote.

Why it exists: on the validation split (carved out of Training, near-duplicates kept on
one side; Testing was never looked at for this), a weighted k-nearest-neighbour vote in
the CNN's own penultimate feature space classified better than the CNN's softmax head:
95.7% against 92.7% accuracy for the shipped compact model, and a lower log-loss. MRI
collections hold many slices of the same patients and scanners; the network learns
features in which those slices sit close together, and a vote among the closest training
scans uses that directly, where one linear layer has to draw four flat boundaries.

How it is used: the features of every Training scan, L2-normalised, are stored with the
model (``braintumor-memory.npz`` in the ``.keras`` archive, float16: 2.9 MB for 5,708
scans of 256 features). For an input, the cosine similarity to every stored vector is one
matrix product (about 1.5 MFLOP, well under a millisecond); the ``k`` most similar vote
with weights ``softmax(similarity / tau)``, and the head's calibrated probabilities keep a
share ``mix``, so no class is ever given exactly zero. ``k``, ``tau`` and ``mix`` are
chosen on the validation split with the memory holding only the training part, then the
memory is rebuilt from all of Training.

The vote runs inside the model's compiled function (:mod:`braintumor.model.loaded`), so
the probabilities and the class come from one call, and Grad-CAM explains the class the
vote chose. It explains it through the network's own score for that class (the head's
logit, as Grad-CAM prescribes): when all ``k`` neighbours agree the vote is flat, and its
gradient says nothing about where the evidence lies.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass

import numpy as np

#: Archive entry (or ``<model>.memory.npz`` sidecar) holding the memory's arrays.
MEMORY_ARCHIVE_ENTRY = "braintumor-memory.npz"
METHOD = "cosine-knn-softmax-vote"

#: The grid searched on the validation split.
K_GRID = (5, 10, 20)
TAU_GRID = (0.01, 0.02, 0.05)
MIX_GRID = (0.05, 0.1, 0.2)


@dataclass(frozen=True)
class FeatureMemory:
    """Normalised training features, their labels and the vote's settings."""

    features: np.ndarray  # (M, D) float32, rows of unit length
    labels: np.ndarray  # (M,) int
    classes: int
    k: int = 10
    tau: float = 0.02
    mix: float = 0.1

    @classmethod
    def build(cls, features: np.ndarray, labels: np.ndarray, classes: int, k: int = 10,
              tau: float = 0.02, mix: float = 0.1) -> FeatureMemory:
        return cls(normalise(features), np.asarray(labels, dtype=np.int32), classes,
                   min(k, len(labels)), tau, mix)

    @property
    def dims(self) -> int:
        return int(self.features.shape[1])

    def describe(self) -> dict:
        """The JSON part of the model's metadata (the arrays go beside it)."""
        return {"method": METHOD, "k": self.k, "tau": self.tau, "mix": self.mix,
                "size": len(self.labels), "dims": self.dims}

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, features=self.features.astype(np.float16), labels=self.labels,
                 settings=np.array([self.k, self.tau, self.mix, self.classes], np.float64))
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> FeatureMemory:
        with np.load(io.BytesIO(data)) as arrays:
            k, tau, mix, classes = arrays["settings"].tolist()
            return cls(normalise(arrays["features"].astype(np.float32)),
                       arrays["labels"].astype(np.int32), int(classes), int(k), float(tau),
                       float(mix))

    def vote(self, features, head_probabilities):
        """Probabilities of the vote mixed with the head's, as TensorFlow ops.

        ``features`` (N, D) and ``head_probabilities`` (N, classes) are tensors or arrays;
        the result is a tensor. Usable inside ``tf.function`` (the bank is a constant).
        """
        import tensorflow as tf

        bank = tf.constant(self.features)
        onehot = tf.constant(np.eye(self.classes, dtype=np.float32)[self.labels])
        similarity = tf.matmul(tf.math.l2_normalize(features, axis=1), bank, transpose_b=True)
        top, index = tf.math.top_k(similarity, k=self.k)
        weights = tf.nn.softmax(top / self.tau, axis=1)
        votes = tf.reduce_sum(weights[..., None] * tf.gather(onehot, index), axis=1)
        return (1.0 - self.mix) * votes + self.mix * head_probabilities

    def vote_numpy(self, features: np.ndarray, head_probabilities: np.ndarray) -> np.ndarray:
        """:meth:`vote` on NumPy arrays, for fitting and evaluation."""
        return np.asarray(self.vote(np.asarray(features, np.float32),
                                    np.asarray(head_probabilities, np.float32)))


def normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def choose_settings(train_features: np.ndarray, train_labels: np.ndarray,
                    val_features: np.ndarray, val_labels: np.ndarray,
                    val_head_probabilities: np.ndarray, classes: int) -> tuple[dict, list]:
    """The (k, tau, mix) that classify the validation split best, and the whole grid.

    The memory holds the training part only, so a validation scan never finds itself.
    Accuracy decides, the log-loss breaks ties. Returns (best row, all rows).
    """
    rows = []
    for k, tau, mix in itertools.product(K_GRID, TAU_GRID, MIX_GRID):
        memory = FeatureMemory.build(train_features, train_labels, classes, k, tau, mix)
        probs = memory.vote_numpy(val_features, val_head_probabilities)
        rows.append({"k": k, "tau": tau, "mix": mix,
                     "accuracy": float(np.mean(probs.argmax(1) == val_labels)),
                     "nll": _nll(probs, val_labels)})
    best = max(rows, key=lambda r: (round(r["accuracy"], 6), -r["nll"]))
    return best, rows
